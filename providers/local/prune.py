"""Deleting the directories of runs that ended more than ``retention_s`` ago (blocking code).

A directory goes only when its run has certainly ended:

* ``exited.json`` exists (the supervisor writes it after the command's group is gone),
  aged from that file's modification time;
* it was renamed ``*.abandoned-<ns>`` by a retried submit (a submit that died before its
  supervisor started), aged from the time in its name, and no supervisor lives in it;
* its supervisor vanished without an exit record (kill -9, host reboot) and no process of
  its command is left, aged from its newest file.

Removal renames the directory to ``*.pruning-<ns>`` first, so an observer sees a whole
run directory or none, and two replicas never delete the same one twice.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from providers.local import rundir
from providers.local.launch import is_stale_without_supervisor

PRUNING_MARK = ".pruning-"


@dataclass
class PruneResult:
    """What one sweep did; failures name directories and errno text, never file contents."""

    removed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def prune_run_dirs(state_dir: Path, retention_s: float, now: float | None = None) -> PruneResult:
    """Delete every run directory under ``state_dir`` whose run ended more than ``retention_s`` ago."""
    now = time.time() if now is None else now
    result = PruneResult()
    try:
        entries = [Path(entry.path) for entry in os.scandir(state_dir) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return result
    for run_dir in entries:
        try:
            ended_at = ended_at_s(run_dir)
            if ended_at is not None and now - ended_at > retention_s and _remove(run_dir):
                result.removed.append(run_dir.name)
        except OSError as exc:
            result.failures.append(f"{run_dir.name}: {exc.strerror or type(exc).__name__}")
        except (ValueError, KeyError, TypeError) as exc:  # a record that is not the JSON we write
            result.failures.append(f"{run_dir.name}: unreadable run record ({type(exc).__name__})")
    return result


def ended_at_s(run_dir: Path) -> float | None:
    """When the run in ``run_dir`` ended (epoch seconds), or None while it may still run."""
    name = run_dir.name
    if PRUNING_MARK in name:
        return 0.0  # a removal that was interrupted: finish it
    if rundir.ABANDONED_MARK in name:
        return None if _supervisor_alive(run_dir) else _abandoned_at(name)
    try:
        return (run_dir / rundir.EXITED).stat().st_mtime
    except FileNotFoundError:
        pass
    return _vanished_at(run_dir)


def _abandoned_at(name: str) -> float | None:
    stamp = name.rpartition(rundir.ABANDONED_MARK)[2]
    return int(stamp) / 1e9 if stamp.isdigit() else None


def _vanished_at(run_dir: Path) -> float | None:
    """The last sign of life of a run whose supervisor is gone without an exit record; None if it may live."""
    record = rundir.read_json(run_dir / rundir.SUPERVISOR)
    if record is None and not is_stale_without_supervisor(run_dir):
        return None  # a submit may be starting it right now
    if record is not None and rundir.is_same_process(record["pid"], record.get("start_ticks")):
        return None
    # Checked after the supervisor: it writes exited.json before it ends, which the caller did not see.
    if (run_dir / rundir.EXITED).exists():
        return None  # ended just now; the next sweep ages it properly
    started = rundir.read_json(run_dir / rundir.STARTED)
    if started is not None and rundir.group_is_ours(started["pid"], started.get("pid_start_ticks")):
        return None  # an orphaned command still runs
    newest = rundir.newest_mtime(run_dir)
    return newest.timestamp() if newest else run_dir.stat().st_mtime


def _supervisor_alive(run_dir: Path) -> bool:
    record = rundir.read_json(run_dir / rundir.SUPERVISOR)
    return record is not None and rundir.is_same_process(record["pid"], record.get("start_ticks"))


def _remove(run_dir: Path) -> bool:
    """Rename out of the way, then delete; False when another sweep got there first."""
    if PRUNING_MARK in run_dir.name:
        doomed = run_dir
    else:
        doomed = run_dir.with_name(f"{run_dir.name}{PRUNING_MARK}{time.time_ns()}")
        try:
            os.rename(run_dir, doomed)
        except FileNotFoundError:
            return False
    try:
        shutil.rmtree(doomed)
    except FileNotFoundError:  # another sweep is deleting it too
        return False
    return True
