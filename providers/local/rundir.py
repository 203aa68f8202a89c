"""The run directory both the provider and the supervisor read and write, and /proc helpers.

Standard library only: the supervisor imports this module and must start fast
and without the dispatcher's dependencies.

Layout of ``STATE_DIR/<attempt_id>/`` (0700; the first attempt of a run claimed before attempts
existed uses the flow run id):

* ``spec.json``       for debugging only: program, limits, env variable *names* (launcher);
                      the full spec goes to the supervisor over its stdin, never to disk
* ``supervisor.json`` supervisor pid, its /proc start time and the host (provider)
* ``started.json``    child pid and start time, supervisor pid, started_at (supervisor)
* ``exited.json``     exit_code, stopped_at, cause, reason (supervisor)
* ``stop.json``       a stop was requested, and why (provider)
* ``output.log``      the command's stdout and stderr (0600); while the command runs it holds
                      whatever the flow prints, and it is rewritten with the run's secret
                      values masked before ``exited.json`` is written
* ``supervisor.log``  the supervisor's own stdout and stderr

Run directories that ended (``exited.json``, or renamed ``*.abandoned-*`` by a retried
submit) are deleted ``retention_s`` later (:mod:`providers.local.prune`).
"""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SPEC = "spec.json"
SUPERVISOR = "supervisor.json"
STARTED = "started.json"
EXITED = "exited.json"
STOP_REQUESTED = "stop.json"
OUTPUT_LOG = "output.log"
SUPERVISOR_LOG = "supervisor.log"
#: A retried submit renames a dead submit's directory to ``<flow run id>.abandoned-<time_ns>``.
ABANDONED_MARK = ".abandoned-"

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write then rename, so a reader never sees half a file even if the writer dies mid-way."""
    # Per-process temporary name: the launcher and the supervisor may write the same record at once.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's object, or None when it does not exist (yet)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def spec_lost(run_dir: Path) -> bool:
    """True when the supervisor ended without its spec: the submit died mid-handover and nothing ran."""
    exited = read_json(run_dir / EXITED)
    return exited is not None and exited.get("spec_received") is False


def _proc_stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may itself contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (state, ppid, pgrp, ...), None if no such process."""
    return _proc_stat_fields(pid)


def proc_start_ticks(pid: int) -> int | None:
    """Start time of a live (non-zombie) process in clock ticks since boot, None if it is gone.

    Pid plus start time names one process for the life of the host, so a pid reused
    by an unrelated process after ours ended is never mistaken for ours.
    """
    fields = _proc_stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):  # zombies have finished; nobody may reap them
        return None
    return int(fields[19])  # field 22 of stat(5)


def is_same_process(pid: int | None, start_ticks: int | None) -> bool:
    return pid is not None and start_ticks is not None and proc_start_ticks(pid) == start_ticks


def live_group_members(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _proc_stat_fields(int(entry.name))
        if fields and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:  # field 5: pgrp
            members.append(int(entry.name))
    return members


def live_descendants(ancestor: int) -> list[int]:
    """Pids of live (non-zombie) processes below ``ancestor`` in the process tree, whatever their group.

    The tree is walked through zombies too: /proc is read one process at a time, so a
    child may still name as parent a process that died (and handed it to a subreaper)
    while we read; a dead parent not yet reaped still links it to ``ancestor``.
    """
    children: dict[int, list[int]] = {}
    live: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _proc_stat_fields(int(entry.name))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))  # field 4: ppid
            if fields[0] not in ("Z", "X"):
                live.add(int(entry.name))
    found: list[int] = []
    todo = list(children.get(ancestor, []))
    while todo:
        pid = todo.pop()
        if pid in live:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def group_is_ours(pgid: int, leader_start_ticks: int | None) -> bool:
    """True while the group the supervisor created for the command still has live members.

    The group id is the command's pid. While the command lives its start time must
    match; once it has ended the kernel keeps the id reserved as long as the group
    has members, so remaining members are still ours.
    """
    leader = proc_start_ticks(pgid)
    if leader is not None:
        return leader == leader_start_ticks
    return bool(live_group_members(pgid))


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group; a group that is already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def exit_code_from_returncode(returncode: int) -> int:
    """Popen reports death by signal N as -N; report 128+N like a shell does."""
    return 128 - returncode if returncode < 0 else returncode


def describe_returncode(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the command was killed by {name}"
    return f"the command exited with code {returncode}"


def newest_mtime(run_dir: Path) -> datetime | None:
    """Modification time of the most recently changed file: the last sign of life of a run."""
    times = []
    for entry in os.scandir(run_dir):
        try:
            times.append(entry.stat().st_mtime)
        except FileNotFoundError:  # a temporary file renamed while we looked
            continue
    return datetime.fromtimestamp(max(times), timezone.utc) if times else None
