"""Execute mode: run a task's essential container command as a local process.

The image is ignored; ``entryPoint + command`` runs on the host in its own
session (so StopTask can signal the whole process group, like ``docker stop``
signals the container), with a container-like environment: a minimal base
(PATH with this interpreter's bin directory first so ``python``/``prefect``
resolve, HOME, PYTHONPATH, VIRTUAL_ENV), what the ECS agent injects
(AWS_REGION, AWS_DEFAULT_REGION, AWS_EXECUTION_ENV), then the container
definition's ``environment`` and the RunTask overrides. Nothing else of the
test process's environment leaks in, just as nothing of the host reaches a
real container.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field

from .tasks import Task

_PASSED_THROUGH = ("HOME", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR")


class StartFailure(Exception):
    """The container could not start; the message becomes the task's stoppedReason."""


@dataclass
class _Process:
    popen: subprocess.Popen
    readers: list[threading.Thread] = field(default_factory=list)
    timers: list[threading.Timer] = field(default_factory=list)


def exit_code_of(returncode: int) -> int:
    """A process killed by signal N exits 128+N, as Docker reports it (143, 137)."""
    return 128 - returncode if returncode < 0 else returncode


def container_environment(region: str, task_env: dict[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    env.setdefault("HOME", "/root")
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)])
    env.update(AWS_REGION=region, AWS_DEFAULT_REGION=region, AWS_EXECUTION_ENV="AWS_ECS_FARGATE")
    env.update(task_env)
    return env


class Executor:
    """Starts, signals and reaps task processes; reports exits through ``on_exit``."""

    def __init__(self, workdir: str, on_line: Callable[[Task, str], None],
                 on_exit: Callable[[Task, int, float], None]):
        self._workdir = workdir
        self._on_line = on_line
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._live: dict[str, _Process] = {}

    def start(self, task: Task) -> None:
        if not task.command:
            raise StartFailure("CannotStartContainerError: Error response from daemon: No command specified")
        env = container_environment(task.region, task.environment)
        try:
            popen = subprocess.Popen(
                task.command, env=env, cwd=self._workdir, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as exc:
            raise StartFailure(
                "CannotStartContainerError: ResourceInitializationError: failed to create new container "
                f"runtime task: unable to start container process: exec: \"{task.command[0]}\": {exc.strerror}"
            ) from None
        proc = _Process(popen)
        proc.readers = [self._thread(self._pump, task, pipe) for pipe in (popen.stdout, popen.stderr)]
        with self._lock:
            self._live[task.arn] = proc
        task.process = popen
        self._thread(self._reap, task, proc)

    @staticmethod
    def _thread(target: Callable, *args) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        return thread

    def _pump(self, task: Task, pipe: Iterable[bytes]) -> None:
        for raw in pipe:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            task.output.append(line)
            self._on_line(task, line)

    def _reap(self, task: Task, proc: _Process) -> None:
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
        for reader in proc.readers:  # let the last lines reach the log stream first
            reader.join(timeout=2)
        with self._lock:
            self._live.pop(task.arn, None)
        self._on_exit(task, exit_code_of(returncode), exited_at)

    def terminate(self, task: Task, grace_s: float) -> None:
        """SIGTERM the process group now, SIGKILL it after ``grace_s`` (docker stop)."""
        with self._lock:
            proc = self._live.get(task.arn)
        if proc is None:
            return
        self._signal(proc, signal.SIGTERM)
        timer = threading.Timer(grace_s, self._signal, args=(proc, signal.SIGKILL))
        timer.daemon = True
        proc.timers.append(timer)
        timer.start()

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
