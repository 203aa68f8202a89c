"""Runs one flow run's command and records how it ended, even when no dispatcher is alive.

Usage: ``python -m providers.local.supervisor RUN_DIR`` with the run spec as JSON on stdin.

The provider starts this program in a session of its own, so it outlives the
dispatcher; everything the provider later reports comes from the files written
here (see :mod:`providers.local.rundir`). Standard library only, so it starts fast.

The spec (argv, env, limits, the run's secret values) arrives over stdin and is
never written to disk. When the command has ended, ``output.log`` is rewritten with
every secret value masked *before* ``exited.json`` is written: a run seen as ended
leaves nothing secret behind.

Signals: SIGTERM (the provider's stop), SIGINT and SIGHUP all end the command's
process group: SIGTERM, ``stop_grace_s`` for it to finish, then SIGKILL.

With the warm engine (:mod:`providers.local.zygote`) this code runs in a process forked
from a zygote that imported Prefect, with the spec in memory (:func:`supervise_run`), and
the command is a fork of it that runs the engine (:mod:`providers.local.warm_child`)
instead of an exec'd ``prefect flow-run execute``; everything below holds for both.

Like a container, a run ends with its main process: the supervisor is a child
subreaper (Linux), so processes the command started in sessions of their own
(``prefect flow-run execute`` starts the engine that way) stay below it, and all
of them are killed and reaped when the command ends or is stopped.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from providers import redaction
from providers.local import rundir

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
WAKE_SIGNALS = STOP_SIGNALS | {signal.SIGCHLD}
GROUP_POLL_S = 0.05
#: How long to wait for the launcher to hand over the spec (it writes it right after starting us).
SPEC_TIMEOUT_S = 60.0
#: A spec larger than this is not one the provider wrote.
MAX_SPEC_BYTES = 64 * 1024 * 1024


class Child(Protocol):
    """The command's process as the supervisor uses it: a Popen, or the warm engine's fork."""

    pid: int

    def wait(self) -> int: ...


class SpecError(Exception):
    """The spec on stdin is missing, cut short or not the JSON object the launcher writes."""


def main(argv: list[str]) -> int:
    # Block the signals we wait for before anything else: one that arrives while the
    # command is being started stays pending and is picked up by sigtimedwait, and
    # nothing can interrupt us between starting the child and recording it.
    signal.pthread_sigmask(signal.SIG_BLOCK, WAKE_SIGNALS)
    if len(argv) != 2:
        print("usage: python -m providers.local.supervisor RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[1])
    _become_subreaper()
    _record_self(run_dir)
    try:
        spec = read_spec(sys.stdin.fileno(), SPEC_TIMEOUT_S)
    except (OSError, SpecError) as exc:
        why = exc if isinstance(exc, SpecError) else exc.strerror or type(exc).__name__
        # Nothing of the run was started: the submit that dies here is taken over by the next one.
        reason = f"could not read the run spec from the dispatcher: {why}"
        _record_exit(run_dir, None, "FAILED_TO_START", reason, spec_received=False)
        return 1
    finally:
        _release_stdin()
    return supervise_run(run_dir, spec)


def supervise_run(run_dir: Path, spec: dict[str, Any]) -> int:
    """Start the command, supervise it and record how it ended (we are subreaper and recorded already).

    Also the entry point of a supervisor forked by the warm engine (:mod:`providers.local.zygote`),
    which has the spec in memory and the wake signals blocked since before it existed.
    """
    if (run_dir / rundir.STOP_REQUESTED).exists():  # stopped before we could block signals
        _record_exit(run_dir, None, "STOPPED", "stopped on request before the command started")
        return 0
    child = _start_child(run_dir, spec)
    if child is None:
        return 0
    try:
        _record_start(run_dir, child)
        returncode, cause, reason = _supervise(child, spec)
    except BaseException:
        # Never leave a command running that nobody supervises or can find again, nor its secrets.
        rundir.signal_group(child.pid, signal.SIGKILL)
        _kill_descendants()
        redact_output(run_dir, spec["secrets"])
        raise
    stopped_at = rundir.utc_now_iso()  # metering ends with the command, not with the redaction
    redact_output(run_dir, spec["secrets"])  # before exited.json: an ended run shows no secret
    _record_exit(run_dir, returncode, cause, reason, stopped_at)
    return 0


def read_spec(fd: int, timeout_s: float) -> dict[str, Any]:
    """The spec the launcher writes to our stdin: everything up to EOF, parsed and checked.

    EOF before a whole object (the launcher died), a timeout (it hangs) or any other
    shape raise SpecError; the message names what was wrong, never the content.
    """
    data = _read_until_eof(fd, timeout_s)
    try:
        spec = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise SpecError(f"not a complete JSON object ({len(data)} bytes)") from None
    if not isinstance(spec, dict):
        raise SpecError("not a JSON object")
    argv, env = spec.get("argv"), spec.get("env")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise SpecError("argv is not a non-empty list of strings")
    if not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
        raise SpecError("env is not an object of strings")
    if not isinstance(spec.get("cwd"), str):
        raise SpecError("cwd is not a string")
    secrets = spec.setdefault("secrets", [])
    if not (isinstance(secrets, list) and all(isinstance(v, str) for v in secrets)):
        raise SpecError("secrets is not a list of strings")
    return spec


def _read_until_eof(fd: int, timeout_s: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + timeout_s
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise SpecError(f"the dispatcher did not hand it over within {timeout_s:g} s")
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"larger than {MAX_SPEC_BYTES} bytes")
        chunks.append(chunk)


def _release_stdin() -> None:
    """Close the pipe from the launcher; /dev/null takes fd 0 so no file we open later lands there."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def redact_output(run_dir: Path, secrets: list[str]) -> None:
    """Mask the run's secret values in output.log; if that fails, delete the log rather than keep them."""
    values = redaction.normalise(secrets)
    if not values:
        return
    path = run_dir / rundir.OUTPUT_LOG
    started = time.monotonic()
    try:
        if redaction.redact_file(path, values, rundir.PRIVATE_FILE_MODE):
            print(f"supervisor {os.getpid()}: output redacted in {time.monotonic() - started:.3f} s", flush=True)
    except OSError as exc:
        print(f"supervisor {os.getpid()}: could not redact the output ({exc.strerror}); deleting it", flush=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _start_child(run_dir: Path, spec: dict[str, Any]) -> Child | None:
    """Start the command in a new session with its limits; None when it could not start."""
    argv = spec["argv"]
    memory_bytes = _memory_limit_bytes(spec.get("memory_mib"))
    cpus = _pick_cpus(spec.get("cpu"))
    output = _open_output(run_dir, spec.get("stream_output", True))
    try:
        if spec.get("warm"):
            # The warm engine: a fork of this (pre-imported) process becomes the engine, in
            # place of exec'ing `prefect flow-run execute`; same session, limits and parent.
            from providers.local import warm_child

            return warm_child.fork_engine(spec, output.fileno(), lambda: _prepare_child(memory_bytes, cpus))
        return subprocess.Popen(
            argv,
            env=spec["env"],
            cwd=spec["cwd"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop reaches grandchildren too
            preexec_fn=lambda: _prepare_child(memory_bytes, cpus),
        )
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        reason = f"could not start {argv[0]!r}: {exc.strerror}{where}"
        _record_exit(run_dir, None, "FAILED_TO_START", redaction.redact_text(reason, spec["secrets"]))
        return None
    except subprocess.SubprocessError as exc:  # the preexec hook failed
        _record_exit(run_dir, None, "FAILED_TO_START", f"could not apply the memory/CPU limits: {exc}")
        return None
    finally:
        output.close()


def _record_self(run_dir: Path) -> None:
    """Write our own supervisor record, the same one the launcher writes after starting us.

    A dispatcher killed right after starting us never writes it; without it the run
    would look like a submit that died, and be started a second time.
    """
    record = {"pid": os.getpid(), "start_ticks": rundir.proc_start_ticks(os.getpid()), "hostname": socket.gethostname()}
    rundir.write_json_atomic(run_dir / rundir.SUPERVISOR, record)


def _record_start(run_dir: Path, child: Child) -> None:
    warm = not isinstance(child, subprocess.Popen)
    started = {
        "pid": child.pid,
        "pid_start_ticks": rundir.proc_start_ticks(child.pid),
        "supervisor_pid": os.getpid(),
        "started_at": rundir.utc_now_iso(),
        "warm": warm,
    }
    rundir.write_json_atomic(run_dir / rundir.STARTED, started)
    how = " (warm engine: forked, not exec'd)" if warm else ""
    print(f"supervisor {os.getpid()}: started command pid {child.pid}{how}", flush=True)


def _open_output(run_dir: Path, keep_output: bool) -> BinaryIO:
    if not keep_output:
        return open(os.devnull, "wb")
    fd = os.open(run_dir / rundir.OUTPUT_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, rundir.PRIVATE_FILE_MODE)
    return os.fdopen(fd, "ab")


def _memory_limit_bytes(memory_mib: int | None) -> int | None:
    """RLIMIT_AS value for the child, never above the hard limit we were given (we could not raise it)."""
    if not memory_mib:
        return None
    wanted = int(memory_mib) * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def _pick_cpus(cpu: float | None) -> set[int] | None:
    """ceil(cpu) of the CPUs we may use, or None when that is all of them anyway."""
    if not cpu:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    wanted = math.ceil(cpu)
    if wanted >= len(allowed):
        return None
    # Start at an offset taken from our pid so concurrent runs spread over the machine
    # instead of all sharing CPU 0.
    first = os.getpid() % len(allowed)
    return {allowed[(first + i) % len(allowed)] for i in range(wanted)}


def _prepare_child(memory_bytes: int | None, cpus: set[int] | None) -> None:
    """Runs in the child between fork and exec (or, warm, between fork and the engine)."""
    # The signal mask survives exec; the command must see SIGTERM and friends normally.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    if memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def _supervise(child: Child, spec: dict[str, Any]) -> tuple[int, str, str]:
    """Wait for the command, a stop signal or the backstop deadline; return (returncode, cause, reason)."""
    grace = float(spec.get("stop_grace_s", 10))
    max_runtime_s = spec.get("max_runtime_s")
    deadline = None if max_runtime_s is None else time.monotonic() + float(max_runtime_s) + grace
    while not _has_exited(child.pid):
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            reason = f"the command ran longer than the runtime cap of {max_runtime_s} s plus {grace:g} s grace"
            return _end_group(child, grace), "TIMED_OUT", reason
        info = signal.sigwaitinfo(WAKE_SIGNALS) if timeout is None else signal.sigtimedwait(WAKE_SIGNALS, timeout)
        if info is not None and info.si_signo in STOP_SIGNALS:
            name = signal.Signals(info.si_signo).name
            return _end_group(child, grace), "STOPPED", f"stopped on request ({name} to the local supervisor)"
    # Like a container, the run ends with its main process: kill whatever it left in its
    # group while the unreaped leader still reserves the group id, then anything else below us.
    rundir.signal_group(child.pid, signal.SIGKILL)
    _kill_descendants(keep=child.pid)
    returncode = child.wait()
    return returncode, "EXITED", rundir.describe_returncode(returncode)


def _has_exited(pid: int) -> bool:
    """True once the child has ended, without reaping it (WNOWAIT keeps its pid and group id ours)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _end_group(child: Child, grace: float) -> int:
    """SIGTERM the command's group, give it ``grace`` seconds, SIGKILL what is left; return the returncode."""
    rundir.signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while rundir.live_group_members(child.pid) and time.monotonic() < deadline:
        time.sleep(GROUP_POLL_S)
    rundir.signal_group(child.pid, signal.SIGKILL)
    _kill_descendants(keep=child.pid)
    return child.wait()


PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Adopt the command's orphans (instead of init), so none can outlive the run unseen; Linux only."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            print(f"supervisor {os.getpid()}: cannot adopt orphans (errno {ctypes.get_errno()})", flush=True)
    except (OSError, AttributeError):
        print(f"supervisor {os.getpid()}: cannot adopt orphans (no prctl)", flush=True)


def _kill_descendants(keep: int | None = None) -> None:
    """SIGKILL every process below us (the command's, whatever their group) and reap all but ``keep``.

    Stopped first, all of them, so none sees another die and reports for the run
    (an engine whose parent vanished would otherwise propose its own Crashed).
    """
    victims: list[int] = []
    for _round in range(3):  # again, for any that forked while we looked (stopped ones cannot)
        new = [pid for pid in rundir.live_descendants(os.getpid()) if pid not in victims]
        if not new:
            break
        victims += new
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in new:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
    deadline = time.monotonic() + 2.0
    pending = [pid for pid in victims if pid != keep]
    while pending and time.monotonic() < deadline:
        pending = [pid for pid in pending if not _reaped(pid)]
        if pending:
            time.sleep(0.01)  # a grandchild is reparented to us once its own parent has died


def _reaped(pid: int) -> bool:
    """Reap ``pid`` if it is our child now; True once it is gone (a zombie left unreaped would hold its pid)."""
    fields = rundir.proc_stat(pid)
    if fields is None:
        return True
    if int(fields[1]) != os.getpid():
        return False
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    return True


def _record_exit(
    run_dir: Path, returncode: int | None, cause: str, reason: str, stopped_at: str | None = None, *, spec_received: bool = True
) -> None:
    exited = {
        "exit_code": None if returncode is None else rundir.exit_code_from_returncode(returncode),
        "stopped_at": stopped_at or rundir.utc_now_iso(),
        "cause": cause,
        "reason": reason,
        "spec_received": spec_received,
    }
    rundir.write_json_atomic(run_dir / rundir.EXITED, exited)
    print(f"supervisor {os.getpid()}: {cause}: {reason}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
