"""Observing and stopping runs from their run directories (blocking code, run off the event loop)."""

from __future__ import annotations

import os
import signal
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from providers.base import InfraPhase, InfraStatus, StopCause
from providers.local import rundir
from providers.local.launch import is_stale_without_supervisor

VANISHED_REASON = "the local supervisor process disappeared without recording an exit"
_TAIL_BYTES = 64 * 1024


class OrphanTerminator:
    """Ends command groups whose supervisor is gone: SIGTERM now, SIGKILL after the grace period.

    Nobody else is left to escalate, and a run reported EXITED must not keep running.
    """

    def __init__(self, grace_s: float) -> None:
        self._grace_s = grace_s
        self._pending: set[int] = set()
        self._lock = threading.Lock()

    def terminate(self, started: dict[str, Any] | None) -> None:
        if started is None:
            return
        pgid, ticks = started["pid"], started.get("pid_start_ticks")
        with self._lock:
            if pgid in self._pending or not rundir.group_is_ours(pgid, ticks):
                return
            self._pending.add(pgid)
        rundir.signal_group(pgid, signal.SIGTERM)
        timer = threading.Timer(self._grace_s, self._kill_if_still_there, (pgid, ticks))
        timer.daemon = True
        timer.start()

    def _kill_if_still_there(self, pgid: int, ticks: int | None) -> None:
        try:
            if rundir.group_is_ours(pgid, ticks):
                rundir.signal_group(pgid, signal.SIGKILL)
        except OSError:
            pass  # best effort in a timer thread; the next status or stop tries again
        finally:
            with self._lock:
                self._pending.discard(pgid)


def observe(run_dir: Path, infrastructure_id: str, orphans: OrphanTerminator) -> InfraStatus:
    """One run's status from its run directory."""
    if not run_dir.is_dir():
        return _status(infrastructure_id, InfraPhase.NOT_FOUND, "NO_RUN_DIRECTORY", reason="no such local run")
    record = rundir.read_json(run_dir / rundir.SUPERVISOR)
    alive = record is not None and rundir.is_same_process(record["pid"], record.get("start_ticks"))
    # Read the exit record only after the liveness check: the supervisor writes it before
    # it ends, so a supervisor seen dead has already written it if it ever will.
    exited = rundir.read_json(run_dir / rundir.EXITED)
    started = rundir.read_json(run_dir / rundir.STARTED)
    if exited is not None:
        return _exited_status(infrastructure_id, started, exited)
    if alive:
        if started is None:
            return _status(infrastructure_id, InfraPhase.PENDING, "STARTING")
        return _status(infrastructure_id, InfraPhase.RUNNING, "RUNNING", started_at=_time(started, "started_at"))
    if record is None and not is_stale_without_supervisor(run_dir):
        return _status(infrastructure_id, InfraPhase.PENDING, "SUBMITTING")
    return _vanished_status(run_dir, infrastructure_id, started, orphans)


def request_stop(run_dir: Path, reason: str, orphans: OrphanTerminator) -> None:
    """Ask the supervisor to stop the run; end the command group ourselves if the supervisor is gone."""
    if not run_dir.is_dir():
        return
    stop_file = run_dir / rundir.STOP_REQUESTED
    if not stop_file.exists():  # also read by a supervisor that has not blocked signals yet
        rundir.write_json_atomic(stop_file, {"reason": reason[:500], "requested_at": rundir.utc_now_iso()})
    record = rundir.read_json(run_dir / rundir.SUPERVISOR)
    if record is not None and rundir.is_same_process(record["pid"], record.get("start_ticks")):
        try:
            os.kill(record["pid"], signal.SIGTERM)  # it forwards to the group and records STOPPED
        except ProcessLookupError:
            pass
        return
    if rundir.read_json(run_dir / rundir.EXITED) is None:
        orphans.terminate(rundir.read_json(run_dir / rundir.STARTED))


def tail_lines(path: Path, limit: int) -> list[str]:
    """The last ``limit`` lines of a log, reading at most its last 64 KiB."""
    if limit <= 0:
        return []
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - _TAIL_BYTES)
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    if start > 0:
        lines = lines[1:]  # the first line was cut by the 64 KiB window
    return lines[-limit:]


def _exited_status(infrastructure_id: str, started: dict[str, Any] | None, exited: dict[str, Any]) -> InfraStatus:
    try:
        cause = StopCause(exited["cause"])
    except ValueError:
        cause = StopCause.UNKNOWN
    return _status(
        infrastructure_id,
        InfraPhase.EXITED,
        f"EXITED:{exited['cause']}",
        started_at=_time(started, "started_at"),
        stopped_at=_time(exited, "stopped_at"),
        exit_code=exited.get("exit_code"),
        stop_cause=cause,
        reason=exited.get("reason"),
    )


def _vanished_status(
    run_dir: Path, infrastructure_id: str, started: dict[str, Any] | None, orphans: OrphanTerminator
) -> InfraStatus:
    """The supervisor is gone and left no exit record (host reboot, kill -9, or a submit that died)."""
    stopped_at = rundir.newest_mtime(run_dir)
    orphans.terminate(started)
    if started is None and not (run_dir / rundir.SUPERVISOR).exists():
        cause, reason = StopCause.FAILED_TO_START, "the submit that created this run died before starting its process"
    elif (run_dir / rundir.STOP_REQUESTED).exists():
        # Usually a stop that reached the supervisor before it could block signals.
        when = "before the command started" if started is None else f"but {VANISHED_REASON}"
        cause, reason = StopCause.STOPPED, f"stopped on request {when}"
    else:
        cause, reason = StopCause.UNKNOWN, VANISHED_REASON
    return _status(
        infrastructure_id,
        InfraPhase.EXITED,
        "SUPERVISOR_GONE",
        started_at=_time(started, "started_at"),
        stopped_at=stopped_at,
        stop_cause=cause,
        reason=reason,
    )


def _status(infrastructure_id: str, phase: InfraPhase, native_state: str, **fields: Any) -> InfraStatus:
    return InfraStatus(infrastructure_id=infrastructure_id, phase=phase, native_state=native_state, **fields)


def _time(record: dict[str, Any] | None, key: str) -> datetime | None:
    value = None if record is None else record.get(key)
    return datetime.fromisoformat(value) if value else None
