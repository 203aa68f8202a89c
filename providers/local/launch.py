"""Starting a run: the idempotent run directory and the detached supervisor (blocking code).

The spec (argv, env, limits, secret values) goes to the supervisor over its stdin
and never to disk; ``spec.json`` keeps only what is safe to read when debugging.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any


from providers import redaction
from providers.errors import SubmissionRejected, TransientProviderError
from providers.local import rundir

if TYPE_CHECKING:
    from providers.local.warm import Zygote


#: Dispatcher variables a flow run inherits unless its job configuration sets them.
INHERITED_ENV = ("PATH", "HOME", "VIRTUAL_ENV", "PYTHONPATH", "LANG", "TMPDIR")
#: The directory that contains the ``providers`` package; the supervisor imports from it.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
#: How long a second submit waits for the first one to record its supervisor.
EXISTING_WAIT_S = 5.0
#: A run directory this old without a supervisor record was left by a submit that died
#: (writing spec.json and forking the supervisor takes milliseconds).
STALE_SUBMIT_S = 15.0
#: How long the supervisor may take to read its spec (it reads it first thing; a hung one gets a cut spec).
SPEC_HANDOVER_S = 10.0
_POLL_S = 0.05


class ZygoteUncertain(Exception):
    """The warm engine's zygote took a whole request but did not answer: a supervisor may or may not exist."""


def flow_run_env(configured: dict[str, str | None], memory_capped: bool) -> dict[str, str]:
    """The flow's environment: its configured env plus the few dispatcher variables it needs.

    The dispatcher's own environment (cloud credentials, its database URL...) is not
    passed on. A variable configured as None is removed, as in Prefect, and not inherited.
    """
    env = {name: value for name, value in configured.items() if value is not None}
    if memory_capped and "MALLOC_ARENA_MAX" not in configured:
        # Under RLIMIT_AS every thread's 64 MiB malloc arena counts: 16 idle threads of a
        # Prefect flow reserve ~1.2 GiB with glibc's default, ~0.3 GiB with 2 arenas.
        env["MALLOC_ARENA_MAX"] = "2"
    for name in INHERITED_ENV:
        if name not in configured and name in os.environ:
            env[name] = os.environ[name]
    if "PATH" not in configured:
        # The `prefect` CLI next to the dispatcher's interpreter is found even when the
        # dispatcher was started without activating its virtualenv.
        path = env.get("PATH", os.defpath)
        bin_dir = os.path.dirname(sys.executable)
        env["PATH"] = path if bin_dir in path.split(os.pathsep) else f"{path}{os.pathsep}{bin_dir}"
    return env


def create_run(
    run_dir: Path, spec: dict[str, Any], python: str, hostname: str, zygote: Zygote | None = None
) -> dict[str, Any] | None:
    """Create the run directory and start its supervisor; None if the directory already existed.

    ``os.mkdir`` is the idempotency lock: exactly one caller creates the directory.
    With a zygote and a spec marked ``warm``, the zygote forks the supervisor (the warm
    engine); when it cannot, the supervisor is started cold, as without one.
    Returns the supervisor record written to ``supervisor.json``.
    """
    run_dir.parent.mkdir(mode=rundir.PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    try:
        os.mkdir(run_dir, rundir.PRIVATE_DIR_MODE)
    except FileExistsError:
        return None
    try:
        write_public_spec(run_dir / rundir.SPEC, spec)
        pid = zygote.start_supervisor(run_dir, spec) if zygote is not None and spec.get("warm") else None
        if pid is None:
            return _start_cold(run_dir, {**spec, "warm": False}, python, hostname)
    except ZygoteUncertain:
        # It may have forked a supervisor, which records itself: the directory stays, as after a submit that died.
        return existing_run(run_dir)
    except BaseException:
        # Nothing was started: release the lock so a retry can start the run.
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    # The zygote is the supervisor's parent and reaps it; the supervisor also records itself.
    record = {"pid": pid, "start_ticks": rundir.proc_start_ticks(pid), "hostname": hostname}
    rundir.write_json_atomic(run_dir / rundir.SUPERVISOR, record)
    return record


def _start_cold(run_dir: Path, spec: dict[str, Any], python: str, hostname: str) -> dict[str, Any]:
    """Start ``python -m providers.local.supervisor`` and hand it the spec over its stdin."""
    supervisor = start_supervisor(run_dir, python)
    # A supervisor that does not get the whole spec (we die or it hangs) records FAILED_TO_START itself.
    send_spec(supervisor, spec, SPEC_HANDOVER_S)
    # While we live, we are the supervisor's parent: reap it so it leaves no zombie.
    threading.Thread(target=supervisor.wait, name=f"local-reaper-{supervisor.pid}", daemon=True).start()
    record = {
        "pid": supervisor.pid,
        "start_ticks": rundir.proc_start_ticks(supervisor.pid),
        "hostname": hostname,
    }
    try:
        rundir.write_json_atomic(run_dir / rundir.SUPERVISOR, record)
    except BaseException:
        supervisor.terminate()  # nobody could tell it is alive: stop it (it records STOPPED)
        raise
    return record


def read_supervisor_record(run_dir: Path) -> dict[str, Any] | None:
    """The supervisor record of a run, or None if this run was never started here.

    A supervisor that never got its spec started nothing: None too, so that it is neither
    metered nor mistaken for the run.
    """
    return None if rundir.spec_lost(run_dir) else rundir.read_json(run_dir / rundir.SUPERVISOR)


def existing_run(run_dir: Path) -> dict[str, Any]:
    """The supervisor record of a run another submit created, waiting briefly for its outcome.

    Waits (up to EXISTING_WAIT_S) until the supervisor has started the command or ended, so
    that a supervisor whose submit died while handing it the spec is seen as such: nothing
    of the run ran, so the directory is moved aside and the retry starts the run afresh.
    """
    deadline = time.monotonic() + EXISTING_WAIT_S
    record = None
    while True:
        record = rundir.read_json(run_dir / rundir.SUPERVISOR)
        settled = (run_dir / rundir.STARTED).exists() or (run_dir / rundir.EXITED).exists()
        if record is not None and settled or time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    if rundir.spec_lost(run_dir):
        _abandon(run_dir)
        raise TransientProviderError(
            "an earlier submit of this flow run died while handing its supervisor the spec; submitting again",
            code="SpecNotDelivered",
        )
    if record is not None:
        return record
    if is_stale_without_supervisor(run_dir):
        _abandon(run_dir)
        raise TransientProviderError(
            "an earlier submit of this flow run died before starting its process; submitting again",
            code="StaleRunDirectory",
        )
    raise TransientProviderError(
        "another submit of this flow run is still starting its process", code="SubmitInProgress"
    )


def _abandon(run_dir: Path) -> None:
    """Move a dead submit's directory aside so the retry can take the lock again.

    rename() is atomic: when two submitters find the same stale directory, one moves
    it and the other's rename fails harmlessly; both then race on mkdir as usual.
    """
    try:
        os.rename(run_dir, run_dir.with_name(f"{run_dir.name}{rundir.ABANDONED_MARK}{time.time_ns()}"))
    except FileNotFoundError:
        pass


def is_stale_without_supervisor(run_dir: Path) -> bool:
    """True when the directory is old enough that the submit which created it must have died."""
    return time.time() - run_dir.stat().st_mtime > STALE_SUBMIT_S


def public_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """What spec.json keeps for debugging: no env values, no arguments (either may hold secrets)."""
    secrets = spec.get("secrets", [])
    public = {key: spec.get(key) for key in ("flow_run_id", "attempt_id", "memory_mib", "cpu", "max_runtime_s", "stop_grace_s", "stream_output", "warm")}
    public["program"] = redaction.redact_text(spec["argv"][0], secrets)
    public["argument_count"] = len(spec["argv"]) - 1
    public["cwd"] = redaction.redact_text(spec["cwd"], secrets)
    public["env_names"] = sorted(spec["env"])
    return public


def write_public_spec(path: Path, spec: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, rundir.PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(public_spec(spec), f)


def send_spec(supervisor: subprocess.Popen[bytes], spec: dict[str, Any], timeout_s: float) -> bool:
    """Write the whole spec to the supervisor's stdin and close it; False if it did not take all of it.

    Non-blocking writes under a deadline: a supervisor that hangs must not hang the submit.
    """
    assert supervisor.stdin is not None
    data = memoryview(json.dumps(spec).encode("utf-8"))
    fd = supervisor.stdin.fileno()
    os.set_blocking(fd, False)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + timeout_s
    try:
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if poller.poll(remaining * 1000):
                data = data[_write_some(fd, data) :]
        return True
    except OSError:  # EPIPE: it died before reading; it recorded FAILED_TO_START, or it vanished
        return False
    finally:
        supervisor.stdin.close()


def _write_some(fd: int, data: memoryview) -> int:
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0


def start_supervisor(run_dir: Path, python: str) -> subprocess.Popen[bytes]:
    """Start the supervisor detached, with a pipe on its stdin for the spec (see send_spec)."""
    log_fd = os.open(run_dir / rundir.SUPERVISOR_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, rundir.PRIVATE_FILE_MODE)
    try:
        return subprocess.Popen(
            [python, "-m", "providers.local.supervisor", str(run_dir)],
            cwd=run_dir,
            env=_supervisor_env(),
            stdin=subprocess.PIPE,
            stdout=log_fd,
            stderr=log_fd,
            # Its own session: it outlives the dispatcher and a Ctrl-C in the dispatcher's terminal.
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise SubmissionRejected(
            f"cannot run the local supervisor interpreter {python!r}: {exc.strerror}", code="SupervisorNotRunnable"
        ) from exc
    finally:
        os.close(log_fd)


def _supervisor_env() -> dict[str, str]:
    """The supervisor needs only the standard library and the ``providers`` package."""
    env = {"PYTHONPATH": str(PACKAGE_ROOT), "PATH": os.environ.get("PATH", os.defpath)}
    if "LANG" in os.environ:
        env["LANG"] = os.environ["LANG"]
    return env
