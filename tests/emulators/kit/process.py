"""Execute mode for any cloud: run a container's command as a local process.

The image is ignored; the command runs on the host in its own session (so a
stop can signal the whole process group, as ``docker stop`` signals the
container) with a container-like environment: a minimal base (PATH with this
interpreter's bin directory first so ``python``/``prefect`` resolve, HOME,
PYTHONPATH, VIRTUAL_ENV), what the cloud's agent injects, then the
container's own variables. Nothing else of the test process's environment
leaks in, just as nothing of the host reaches a real container.

A backend keys each process by its own id (an ECS task ARN, an ACI
``group/container``) and hears back through two callbacks: every output line,
and the exit (code as Docker reports it, and when it happened).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

_PASSED_THROUGH = ("HOME", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR")


class StartFailure(Exception):
    """The command could not be started (not found, not executable): the cloud reports a start failure."""


def exit_code_of(returncode: int) -> int:
    """A process killed by signal N exits 128+N, as Docker reports it (143, 137)."""
    return 128 - returncode if returncode < 0 else returncode


def container_environment(injected: dict[str, str], own: dict[str, str]) -> dict[str, str]:
    """The minimal host base, then what the cloud injects, then the container's own variables."""
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    env.setdefault("HOME", "/root")
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)])
    env.update(injected)
    env.update(own)
    return env


@dataclass
class _Process:
    popen: subprocess.Popen
    readers: list[threading.Thread] = field(default_factory=list)
    timers: list[threading.Timer] = field(default_factory=list)


class ProcessRunner:
    """Starts, signals and reaps processes keyed by ``key``.

    ``on_line(key, line)`` gets every stdout/stderr line; ``on_exit(key,
    exit_code, exited_at)`` is called once, after the last line was delivered.
    """

    def __init__(self, workdir: str, on_line: Callable[[str, str], None],
                 on_exit: Callable[[str, int, float], None]):
        self._workdir = workdir
        self._on_line, self._on_exit = on_line, on_exit
        self._lock = threading.Lock()
        self._live: dict[str, _Process] = {}

    def start(self, key: str, command: Sequence[str], env: dict[str, str]) -> subprocess.Popen:
        try:
            popen = subprocess.Popen(
                list(command), env=env, cwd=self._workdir, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as exc:
            raise StartFailure(f'exec: "{command[0]}": {exc.strerror}') from None
        proc = _Process(popen)
        proc.readers = [self._thread(self._pump, key, pipe) for pipe in (popen.stdout, popen.stderr)]
        with self._lock:
            self._live[key] = proc
        self._thread(self._reap, key, proc)
        return popen

    def running(self, key: str) -> bool:
        with self._lock:
            return key in self._live

    @staticmethod
    def _thread(target: Callable, *args) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        return thread

    def _pump(self, key: str, pipe: Iterable[bytes]) -> None:
        for raw in pipe:
            self._on_line(key, raw.decode("utf-8", "replace").rstrip("\r\n"))

    def _reap(self, key: str, proc: _Process) -> None:
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
            self._live.pop(key, None)
        self._on_exit(key, exit_code_of(returncode), exited_at)

    def terminate(self, key: str, grace_s: float) -> bool:
        """SIGTERM the process group now, SIGKILL it after ``grace_s`` (docker stop); False if not running."""
        with self._lock:
            proc = self._live.get(key)
        if proc is None:
            return False
        self._signal(proc, signal.SIGTERM)
        timer = threading.Timer(grace_s, self._signal, args=(proc, signal.SIGKILL))
        timer.daemon = True
        proc.timers.append(timer)
        timer.start()
        return True

    @staticmethod
    def _signal(proc: _Process, sig: signal.Signals) -> None:
        if proc.popen.returncode is not None:
            return  # reaped: the group id may belong to someone else now
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.popen.pid, sig)  # the leader's pid is the group id

    def shutdown(self) -> None:
        """Kill everything still running and wait for it to be reaped."""
        with self._lock:
            live = list(self._live.values())
        for proc in live:
            for timer in proc.timers:
                timer.cancel()
            self._signal(proc, signal.SIGKILL)
        for proc in live:
            with suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)
