"""State mapping: Prefect state x infrastructure phase -> action, every combination explicit."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from prefect.client.schemas.objects import StateType

from dispatcher.loops.decisions import Action, Observation, crash_message, decide, format_duration
from providers.base import InfraPhase, InfraStatus, StopCause

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def infra(phase: InfraPhase, cause: StopCause | None = None, exit_code: int | None = None, reason: str | None = None) -> InfraStatus:
    return InfraStatus(infrastructure_id="i-1", phase=phase, native_state=phase.value, stop_cause=cause,
                       exit_code=exit_code, reason=reason, started_at=T0)


def obs(state: StateType, status: InfraStatus, **kw) -> Observation:
    return Observation(run_state=state, infra=status, elapsed_s=kw.pop("elapsed_s", 100), max_runtime_s=kw.pop("max_runtime_s", 3600), **kw)


@pytest.mark.parametrize("state", [StateType.PENDING, StateType.RUNNING])
@pytest.mark.parametrize("phase", [InfraPhase.PENDING, InfraPhase.RUNNING])
def test_active_run_on_live_infrastructure_waits(state, phase):
    assert decide(obs(state, infra(phase))).action == Action.WAIT


@pytest.mark.parametrize("state", [StateType.PENDING, StateType.RUNNING])
def test_nonzero_exit_while_active_crashes_with_code_and_reason(state):
    d = decide(obs(state, infra(InfraPhase.EXITED, StopCause.EXITED, 137, "OutOfMemoryError")))
    assert d.action == Action.CRASH
    assert "exit code 137" in d.message and "OutOfMemoryError" in d.message


def test_exit_zero_without_final_state_is_a_crash_once_prefect_had_time_to_show_it():
    exited = infra(InfraPhase.EXITED, StopCause.EXITED, 0)
    assert decide(obs(StateType.RUNNING, exited, exited_for_s=2)).action == Action.WAIT
    d = decide(obs(StateType.RUNNING, exited, exited_for_s=11))
    assert d.action == Action.CRASH and "never reported a final state" in d.message


def test_nonzero_exit_crashes_at_once():
    assert decide(obs(StateType.RUNNING, infra(InfraPhase.EXITED, StopCause.EXITED, 1), exited_for_s=0)).action == Action.CRASH


@pytest.mark.parametrize("state", [StateType.CRASHED, StateType.FAILED])
@pytest.mark.parametrize("cause,requested", [(StopCause.TIMED_OUT, False), (StopCause.STOPPED, True)])
def test_a_run_its_cap_killed_ends_timed_out_even_if_the_engine_set_another_final_state(state, cause, requested):
    d = decide(obs(state, infra(InfraPhase.EXITED, cause, 143), run_state_name=state.value.title(), stop_requested=requested))
    assert d.action == Action.MARK_TIMED_OUT and d.force


def test_a_timed_out_run_or_one_that_crashed_on_its_own_is_left_as_it_is():
    done = decide(obs(StateType.FAILED, infra(InfraPhase.EXITED, StopCause.TIMED_OUT, 143), run_state_name="TimedOut"))
    assert done.action == Action.FINISH
    own = decide(obs(StateType.CRASHED, infra(InfraPhase.EXITED, StopCause.EXITED, 1), run_state_name="Crashed"))
    assert own.action == Action.FINISH
    completed = decide(obs(StateType.COMPLETED, infra(InfraPhase.EXITED, StopCause.TIMED_OUT, 0), run_state_name="Completed"))
    assert completed.action == Action.FINISH


def test_missing_exit_code_is_a_crash():
    d = decide(obs(StateType.RUNNING, infra(InfraPhase.EXITED, StopCause.INTERRUPTED, None, "spot")))
    assert d.action == Action.CRASH and "without an exit code" in d.message and "interrupted" in d.message


def test_failed_to_start_crashes_while_pending():
    d = decide(obs(StateType.PENDING, infra(InfraPhase.EXITED, StopCause.FAILED_TO_START, None, "CannotPullContainerError")))
    assert d.action == Action.CRASH and "failed to start" in d.message and "CannotPullContainerError" in d.message


def test_not_found_waits_for_eventual_consistency_then_crashes():
    assert decide(obs(StateType.PENDING, infra(InfraPhase.NOT_FOUND), elapsed_s=5)).action == Action.WAIT
    assert decide(obs(StateType.PENDING, infra(InfraPhase.NOT_FOUND), elapsed_s=60)).action == Action.CRASH


@pytest.mark.parametrize("state", [StateType.PENDING, StateType.RUNNING, StateType.COMPLETED])
def test_unknown_phase_is_never_success(state):
    assert decide(obs(state, infra(InfraPhase.UNKNOWN))).action == Action.WAIT


def test_unknown_phase_while_cancelling_keeps_stopping_and_never_marks_cancelled():
    assert decide(obs(StateType.CANCELLING, infra(InfraPhase.UNKNOWN))).action == Action.STOP_FOR_CANCEL


def test_over_max_runtime_stops_then_marks_timed_out():
    d = decide(obs(StateType.RUNNING, infra(InfraPhase.RUNNING), elapsed_s=3601, max_runtime_s=3600))
    assert d.action == Action.STOP_FOR_TIMEOUT and "1h00m" in d.message
    after = decide(obs(StateType.RUNNING, infra(InfraPhase.EXITED, StopCause.STOPPED, 143), stop_requested=True))
    assert after.action == Action.MARK_TIMED_OUT


def test_infrastructure_side_timeout_marks_timed_out():
    assert decide(obs(StateType.RUNNING, infra(InfraPhase.EXITED, StopCause.TIMED_OUT, 137))).action == Action.MARK_TIMED_OUT


@pytest.mark.parametrize("phase", [InfraPhase.PENDING, InfraPhase.RUNNING])
def test_cancelling_stops_live_infrastructure(phase):
    assert decide(obs(StateType.CANCELLING, infra(phase))).action == Action.STOP_FOR_CANCEL


@pytest.mark.parametrize("phase", [InfraPhase.EXITED, InfraPhase.NOT_FOUND])
def test_cancelling_with_infrastructure_gone_marks_cancelled(phase):
    assert decide(obs(StateType.CANCELLING, infra(phase, StopCause.STOPPED, 143))).action == Action.MARK_CANCELLED


@pytest.mark.parametrize("state", [StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED])
@pytest.mark.parametrize("phase", [InfraPhase.EXITED, InfraPhase.NOT_FOUND])
def test_final_run_with_infrastructure_gone_finishes(state, phase):
    assert decide(obs(state, infra(phase, StopCause.EXITED, 0))).action == Action.FINISH


def test_completed_run_gets_time_to_exit_before_being_stopped():
    assert decide(obs(StateType.COMPLETED, infra(InfraPhase.RUNNING), terminal_for_s=5)).action == Action.WAIT
    assert decide(obs(StateType.COMPLETED, infra(InfraPhase.RUNNING), terminal_for_s=61)).action == Action.STOP_LEFTOVER


@pytest.mark.parametrize("state", [StateType.CANCELLED, StateType.CRASHED])
def test_cancelled_or_crashed_run_with_live_infrastructure_is_stopped(state):
    assert decide(obs(state, infra(InfraPhase.RUNNING))).action == Action.STOP_LEFTOVER


def test_crash_message_shape():
    msg = crash_message(InfraStatus(infrastructure_id="x", phase=InfraPhase.EXITED, native_state="STOPPED/EssentialContainerExited",
                                    exit_code=1, stop_cause=StopCause.EXITED, reason="Essential container in task exited"))
    assert msg == ("Flow run infrastructure exited with exit code 1 (STOPPED/EssentialContainerExited): "
                   "Essential container in task exited.")


@pytest.mark.parametrize("seconds,text", [(8, "8s"), (60, "1m"), (90, "1m30s"), (86400, "24h00m"), (3725, "1h02m05s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("state", [StateType.PENDING, StateType.RUNNING])
def test_infrastructure_pending_past_its_start_timeout_crashes_then_is_stopped_as_a_leftover(state):
    pulling = infra(InfraPhase.PENDING, reason="pulling image 'huge:latest'")
    assert decide(obs(state, pulling, elapsed_s=239, start_timeout_s=240)).action == Action.WAIT
    late = decide(obs(state, pulling, elapsed_s=241, start_timeout_s=240))
    assert late.action == Action.CRASH
    assert late.message == "Flow run infrastructure did not start within 4m (PENDING): pulling image 'huge:latest'."
    # Started in time, or no start timeout: only the runtime cap applies.
    assert decide(obs(state, infra(InfraPhase.RUNNING), elapsed_s=999, start_timeout_s=240)).action == Action.WAIT
    assert decide(obs(state, pulling, elapsed_s=999, start_timeout_s=None)).action == Action.WAIT
    # The run is Crashed now; its infrastructure still exists and is stopped.
    assert decide(obs(StateType.CRASHED, pulling, elapsed_s=242, start_timeout_s=240)).action == Action.STOP_LEFTOVER
