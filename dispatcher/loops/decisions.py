"""What to do with one in-flight run, given Prefect's state and the infrastructure's (pure).

Every combination maps to an explicit action; the watcher only carries them out.
"""

from __future__ import annotations

import enum

from prefect.client.schemas.objects import StateType
from pydantic import BaseModel, Field

from providers.base import InfraPhase, InfraStatus, StopCause

TERMINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}


class Action(str, enum.Enum):
    WAIT = "WAIT"  # nothing to do yet
    FINISH = "FINISH"  # both sides are done: meter and forget
    CRASH = "CRASH"  # propose Crashed with the message
    STOP_FOR_CANCEL = "STOP_FOR_CANCEL"  # stop infrastructure, the run is CANCELLING
    MARK_CANCELLED = "MARK_CANCELLED"  # infrastructure is gone, the run is CANCELLING
    STOP_FOR_TIMEOUT = "STOP_FOR_TIMEOUT"  # over max runtime: stop, then Failed/TimedOut
    MARK_TIMED_OUT = "MARK_TIMED_OUT"  # infrastructure stopped because of the runtime cap
    STOP_LEFTOVER = "STOP_LEFTOVER"  # the run is final but its infrastructure still runs


class Decision(BaseModel):
    action: Action = Field(description="What the watcher must do.")
    message: str = Field(default="", description="State message for Crashed/TimedOut/Cancelled.")
    force: bool = Field(default=False, description="Replace a final state the engine set (a run killed by its cap).")


class Observation(BaseModel):
    """Inputs of one decision."""

    run_state: StateType = Field(description="The flow run's state type, read after the infrastructure status.")
    run_state_name: str = Field(default="", description="The state's name (TimedOut, Crashed...).")
    infra: InfraStatus = Field(description="The infrastructure status.")
    elapsed_s: float = Field(description="Seconds since the infrastructure was submitted.")
    max_runtime_s: int = Field(description="Runtime cap of the run.")
    start_timeout_s: float | None = Field(
        default=None, description="How long the infrastructure may stay PENDING (the job's start timeout); None: no limit."
    )
    terminal_for_s: float = Field(default=0.0, description="Seconds the run has been in a final state.")
    exited_for_s: float = Field(default=0.0, description="Seconds since the infrastructure was first seen EXITED.")
    exit_report_grace_s: float = Field(
        default=10.0, description="How long an exited run's final state may take to show in Prefect before it is a crash."
    )
    stop_requested: bool = Field(default=False, description="We already asked the infrastructure to stop for a timeout.")
    superseded: bool = Field(
        default=False, description="Prefect moved on to another attempt of the run (a retry): this one is over."
    )
    leftover_grace_s: float = Field(default=60.0, description="How long a final run's infrastructure may keep running.")
    not_found_grace_s: float = Field(default=30.0, description="Eventual consistency window after submission.")


def decide(obs: Observation) -> Decision:
    """The one place where Prefect state x infrastructure phase becomes an action."""
    if obs.superseded:
        return _decide_superseded(obs)
    if obs.run_state in TERMINAL:
        return _decide_final_run(obs)
    if obs.run_state == StateType.CANCELLING:
        return _decide_cancelling(obs)
    return _decide_active(obs)


def _gone(infra: InfraStatus) -> bool:
    return infra.phase in (InfraPhase.EXITED, InfraPhase.NOT_FOUND)


def stopped_by_cap(infra: InfraStatus, stop_requested: bool) -> bool:
    """The infrastructure ended because of the runtime cap: its own, or our stop for it."""
    return infra.stop_cause == StopCause.TIMED_OUT or (stop_requested and infra.stop_cause == StopCause.STOPPED)


def over_runtime_cap(infra: InfraStatus, elapsed_s: float, max_runtime_s: int) -> bool:
    """Still running past its cap: stopped even when Prefect cannot be asked about the run."""
    return infra.phase in (InfraPhase.PENDING, InfraPhase.RUNNING) and elapsed_s > max_runtime_s


def _decide_final_run(obs: Observation) -> Decision:
    if _gone(obs.infra):
        if (obs.run_state in (StateType.CRASHED, StateType.FAILED) and obs.run_state_name != "TimedOut"
                and stopped_by_cap(obs.infra, obs.stop_requested)):
            # The cap killed it before our TimedOut landed and the engine, dying, set its own
            # final state: the run ended because of the cap, whichever came first.
            return Decision(action=Action.MARK_TIMED_OUT, message=_timeout_message(obs.max_runtime_s), force=True)
        return Decision(action=Action.FINISH)
    if obs.infra.phase == InfraPhase.UNKNOWN:
        return Decision(action=Action.WAIT)
    # Completed/Failed runs' containers exit on their own within seconds; Cancelled and
    # Crashed ones (set by a person or by us) may never exit, and cost money meanwhile.
    if obs.run_state in (StateType.CANCELLED, StateType.CRASHED) or obs.terminal_for_s > obs.leftover_grace_s:
        return Decision(action=Action.STOP_LEFTOVER, message=f"flow run is {obs.run_state.value}")
    return Decision(action=Action.WAIT)


def _decide_superseded(obs: Observation) -> Decision:
    """An earlier attempt: never touch the run's state (it belongs to the new attempt); stop, meter, forget."""
    if _gone(obs.infra):
        return Decision(action=Action.FINISH)
    if obs.infra.phase == InfraPhase.UNKNOWN:
        return Decision(action=Action.WAIT)
    return Decision(action=Action.STOP_LEFTOVER, message="the flow run was retried: this attempt is over")


def _decide_cancelling(obs: Observation) -> Decision:
    if _gone(obs.infra):
        return Decision(action=Action.MARK_CANCELLED, message="Infrastructure stopped by the dispatcher.")
    return Decision(action=Action.STOP_FOR_CANCEL, message="Flow run cancelled by request.")


def _decide_active(obs: Observation) -> Decision:
    infra = obs.infra
    if infra.phase == InfraPhase.EXITED:
        return _decide_exited(obs)
    if infra.phase == InfraPhase.NOT_FOUND:
        if obs.elapsed_s < obs.not_found_grace_s:
            return Decision(action=Action.WAIT)
        return Decision(action=Action.CRASH, message=f"Infrastructure {infra.infrastructure_id} no longer exists. {infra.reason or ''}".strip())
    if infra.phase == InfraPhase.UNKNOWN:
        return Decision(action=Action.WAIT)
    if obs.elapsed_s > obs.max_runtime_s:
        return Decision(action=Action.STOP_FOR_TIMEOUT, message=_timeout_message(obs.max_runtime_s))
    if infra.phase == InfraPhase.PENDING and obs.start_timeout_s is not None and obs.elapsed_s > obs.start_timeout_s:
        # Crashed first; the next tick sees a Crashed run whose infrastructure still exists and stops it.
        reason = f": {infra.reason}" if infra.reason else ""
        return Decision(action=Action.CRASH, message=f"Flow run infrastructure did not start within "
                        f"{format_duration(obs.start_timeout_s)} ({infra.native_state}){reason}.")
    return Decision(action=Action.WAIT)


def _decide_exited(obs: Observation) -> Decision:
    infra = obs.infra
    if stopped_by_cap(infra, obs.stop_requested):
        return Decision(action=Action.MARK_TIMED_OUT, message=_timeout_message(obs.max_runtime_s))
    if infra.exit_code == 0 and obs.exited_for_s < obs.exit_report_grace_s:
        # The engine exits 0 only after Prefect accepted its final state; a read that does not
        # show it yet is behind (seen once in 50-run bursts on SQLite), not a crash.
        return Decision(action=Action.WAIT)
    return Decision(action=Action.CRASH, message=crash_message(infra))


def _timeout_message(max_runtime_s: int) -> str:
    return f"Flow run exceeded its maximum runtime of {format_duration(max_runtime_s)} and its infrastructure was stopped."


def crash_message(infra: InfraStatus) -> str:
    """Why the infrastructure ended while the flow run had not: the cloud's reason and exit code."""
    cause = {
        StopCause.FAILED_TO_START: "failed to start",
        StopCause.INTERRUPTED: "was interrupted by the cloud",
        StopCause.STOPPED: "was stopped outside the dispatcher",
        StopCause.TIMED_OUT: "hit its runtime cap",
    }.get(infra.stop_cause or StopCause.UNKNOWN, "exited")
    parts = [f"Flow run infrastructure {cause}"]
    if infra.exit_code is not None:
        parts.append(f"with exit code {infra.exit_code}")
    elif infra.stop_cause != StopCause.FAILED_TO_START:
        parts.append("without an exit code")
    text = " ".join(parts) + f" ({infra.native_state})"
    if infra.exit_code == 0:
        text += " but the flow run never reported a final state"
    if infra.reason:
        text += f": {infra.reason}"
    return text + "."


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s" if secs else f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"
