"""Execute mode for every emulator: run a container's command as a local process.

The image is ignored; the command runs on the host in its own session (so a
stop can signal the whole process group, as ``docker stop`` signals the
container) with a container-like environment: a minimal base (PATH with this
interpreter's bin directory first so ``python``/``prefect`` resolve, HOME,
PYTHONPATH, VIRTUAL_ENV), then what the cloud's agent injects, then the
container's own env. Nothing else of the test process's environment leaks
in, just as nothing of the host reaches a real container. When the leading
process exits, whatever it left behind in its group is killed, as a container
ends with its PID 1.

A cloud's executor wraps ``ProcessRunner``: it picks a key (an ECS task ARN,
a Cloud Run ``execution/task-index``, an ACI ``group/container#run``), the
command and the env, passes ``on_line``/``on_exit`` callbacks that close over
its own objects, and words ``StartFailure`` as its cloud does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

_PASSED_THROUGH = ("HOME", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR")

OnLine = Callable[[str], None]
"""``on_line(line)``: one stdout or stderr line, without its line break."""
OnExit = Callable[[int, float], None]
"""``on_exit(exit_code, exited_at)``: exit code as Docker reports it, epoch seconds; after the last line."""


class StartFailure(Exception):
    """A container could not start; ``str(exc)`` is the message its cloud reports.

    ``ProcessRunner.start`` raises it when the command cannot be executed, with
    the OCI runtime's words (``exec: "prog": No such file or directory``) and
    ``program``/``reason`` for a cloud that words it differently. An executor
    raises it too for what its cloud refuses before that (no command given).
    """

    def __init__(self, message: str, *, program: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.program, self.reason = program, reason


def exit_code_of(returncode: int) -> int:
    """A process killed by signal N exits 128+N, as Docker reports it (143, 137)."""
    return 128 - returncode if returncode < 0 else returncode


def container_environment(*layers: Mapping[str, str]) -> dict[str, str]:
    """The minimal base environment, then each layer in order (the cloud's agent, then the container's env)."""
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    env.setdefault("HOME", "/root")
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)])
    for layer in layers:
        env.update(layer)
    return env


@dataclass
class _Process:
    popen: subprocess.Popen
    readers: list[threading.Thread] = field(default_factory=list)
    timers: list[threading.Timer] = field(default_factory=list)


class ProcessRunner:
    """Starts, signals and reaps processes by key; reports each line and the exit through callbacks.

    A key names at most one live process: starting a key that is still
    running is an emulator bug (``ValueError``); once its exit was reported
    the key may be used again (a retried attempt).
    """

    def __init__(self, workdir: str):
        self._workdir = workdir
        self._lock = threading.Lock()
        self._live: dict[str, _Process] = {}

    def start(self, key: str, command: Sequence[str], env: Mapping[str, str], *, on_line: OnLine,
              on_exit: OnExit) -> subprocess.Popen:
        """Start ``command``; ``StartFailure`` if it cannot be executed (not found, not executable)."""
        if not command:
            raise StartFailure("no command to run")
        with self._lock:
            if key in self._live:
                raise ValueError(f"{key} is already running")
        try:
            popen = subprocess.Popen(
                list(command), env=dict(env), cwd=self._workdir, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StartFailure(f'exec: "{command[0]}": {reason}', program=command[0], reason=reason) from None
        proc = _Process(popen)
        proc.readers = [_thread(_pump, pipe, on_line) for pipe in (popen.stdout, popen.stderr)]
        with self._lock:
            self._live[key] = proc
        _thread(self._reap, key, proc, on_exit)
        return popen

    def _reap(self, key: str, proc: _Process, on_exit: OnExit) -> None:
        pid = proc.popen.pid
        with suppress(ChildProcessError):
            # Wait for the leader's exit without reaping it, so its pid (our group
            # id) cannot be reused while we kill what it left behind.
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        exited_at = time.time()
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # as in Docker: the container ends with its PID 1
        returncode = proc.popen.wait()
        for timer in proc.timers:
            timer.cancel()
        for reader in proc.readers:  # let the last lines arrive first
            reader.join(timeout=2)
        with self._lock:
            if self._live.get(key) is proc:
                del self._live[key]
        on_exit(exit_code_of(returncode), exited_at)

    def running(self, key: str) -> bool:
        with self._lock:
            return key in self._live

    def terminate(self, key: str, grace_s: float) -> bool:
        """SIGTERM the process group now, SIGKILL it after ``grace_s`` (docker stop); False if not running."""
        with self._lock:
            proc = self._live.get(key)
        if proc is None:
            return False
        _signal(proc, signal.SIGTERM)
        timer = threading.Timer(grace_s, _signal, args=(proc, signal.SIGKILL))
        timer.daemon = True
        proc.timers.append(timer)
        timer.start()
        return True

    def shutdown(self) -> None:
        """Kill everything still running and wait for it to be reaped."""
        with self._lock:
            live = list(self._live.values())
        for proc in live:
            for timer in proc.timers:
                timer.cancel()
            _signal(proc, signal.SIGKILL)
        for proc in live:
            with suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)


def _thread(target: Callable, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _pump(pipe: Iterable[bytes], on_line: OnLine) -> None:
    for raw in pipe:
        on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))


def _signal(proc: _Process, sig: signal.Signals) -> None:
    if proc.popen.returncode is not None:
        return  # reaped: the group id may belong to someone else now
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.popen.pid, sig)  # the leader's pid is the group id
