"""The warm engine's run process: a fork of a supervisor that already imported Prefect.

A supervisor forked by the zygote (:mod:`providers.local.zygote`) starts the run's
command with :func:`fork_engine` instead of exec'ing ``prefect flow-run execute``:
its child takes the same steps a cold command gets from the supervisor (a session
of its own, the signal mask cleared, RLIMIT_AS and CPU affinity, the run's cwd,
output.log on stdout and stderr, /dev/null on stdin), then takes on the run's
environment - ``os.environ`` replaced, Prefect's settings and logging rebuilt
from it - and runs ``prefect.engine`` as ``python -m prefect.engine`` would.

It stays the supervisor's child, so waiting, stopping and killing every descendant
work exactly as for a cold command.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import runpy
import signal
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Callable
from typing import Any, NoReturn

#: glibc's mallopt parameter for MALLOC_ARENA_MAX (read from the environment only at process start).
M_ARENA_MAX = -8
#: Environment variables that change how an interpreter starts; a run that sets one starts cold.
#: PYTHONPATH and PYTHONUNBUFFERED are the exceptions the warm engine applies itself.
WARM_PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONUNBUFFERED")
_MAX_FD = 1 << 16


class ForkedEngine:
    """The forked engine as the supervisor sees it: a pid, and a Popen-style wait()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def wait(self) -> int:
        if self.returncode is None:
            _pid, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)  # -N when killed by signal N, like Popen
        return self.returncode


def fork_engine(spec: dict[str, Any], output_fd: int, prepare: Callable[[], None]) -> ForkedEngine:
    """Fork the run's engine; OSError (like Popen's) when its preparation failed in the child.

    ``prepare`` applies the limits, as Popen's preexec_fn does for a cold command. A pipe
    reports whether the child got through preparation, as Popen's error pipe does.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        _child(spec, output_fd, prepare, ready_w)
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as ready:
        report = ready.read()
    if report == b"ok":
        return ForkedEngine(pid)
    os.waitpid(pid, 0)
    errno, _, message = report.decode("utf-8", "replace").partition(":")
    raise OSError(int(errno) if errno.isdigit() else 0, message or "the warm engine did not start")


def _child(spec: dict[str, Any], output_fd: int, prepare: Callable[[], None], ready_w: int) -> NoReturn:
    try:
        os.setsid()  # its own session and process group, so stop reaches grandchildren too
        prepare()
        os.chdir(spec["cwd"])
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        # Only stdin, stdout and stderr are inherited, as with Popen(close_fds=True).
        os.closerange(3, ready_w)
        os.closerange(ready_w + 1, _MAX_FD)
    except OSError as exc:
        os.write(ready_w, f"{exc.errno or 0}:{exc.strerror or exc}".encode())
        os._exit(127)
    except BaseException as exc:  # noqa: BLE001 - reported to the supervisor, which records FAILED_TO_START
        os.write(ready_w, f"0:{type(exc).__name__}".encode())
        os._exit(127)
    os.write(ready_w, b"ok")
    os.close(ready_w)
    _exit(_run_engine(spec))


def _run_engine(spec: dict[str, Any]) -> int | None:
    """Take on the run's environment and run ``prefect.engine`` as ``python -m`` would.

    The exit code, or None when the engine ended on a SIGTERM (then we die of it, as the
    cold command does when the supervisor stops it).
    """
    try:
        apply_environment(spec["env"], spec["cwd"])
        _infrastructure_owns_termination()
        sys.argv = [sys.argv[0], spec["flow_run_id"]]
        with warnings.catch_warnings():
            # The zygote imported prefect.engine already; running it again as __main__ is the point.
            warnings.filterwarnings("ignore", message=".*found in sys.modules.*", category=RuntimeWarning)
            runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _system_exit_code(exc)
    except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught exception
        traceback.print_exc()
        code = 1
    return None if _was_terminated() else code


def _infrastructure_owns_termination() -> None:
    """A SIGTERM reaching the engine comes from its supervisor (a stop or the runtime cap).

    Cold, ``prefect flow-run execute`` dies of that SIGTERM and its engine, in a session of
    its own, is killed without reporting a state: the dispatcher decides the run's final
    state (Cancelled, TimedOut, Crashed). Prefect's engine does the same when its runner
    committed the "relinquish" intent before the SIGTERM: it ends without proposing one.
    """
    from prefect._internal import control_listener

    control_listener._set_intent("relinquish")


def _was_terminated() -> bool:
    """True when the engine consumed the intent, which it does only on a termination signal."""
    from prefect._internal import control_listener

    return control_listener.get_intent() is None


def apply_environment(env: dict[str, str], cwd: str) -> None:
    """Make this process look started with ``env`` in ``cwd``: os.environ, sys.path, Prefect's settings."""
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # recomputed from the run's TMPDIR
    extra = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[:] = [cwd, *extra, *_interpreter_path()]
    if env.get("PYTHONUNBUFFERED"):
        sys.stdout.reconfigure(write_through=True)
        sys.stderr.reconfigure(write_through=True)
    _set_malloc_arenas(env.get("MALLOC_ARENA_MAX"))
    _rebuild_prefect_settings()


def _interpreter_path() -> list[str]:
    """sys.path as the interpreter built it: without the zygote's script directory and PYTHONPATH."""
    return list(_INTERPRETER_PATH)


def remember_interpreter_path() -> None:
    """Called by the zygote at start: its sys.path minus what its own cwd and PYTHONPATH added."""
    own = {entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry}
    _INTERPRETER_PATH[:] = [entry for entry in sys.path[1:] if entry not in own]


_INTERPRETER_PATH: list[str] = list(sys.path[1:])


def _set_malloc_arenas(value: str | None) -> None:
    if not (value and value.isdigit()):
        return
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, int(value))
    except (OSError, AttributeError):  # not glibc: nothing to cap
        pass


def _rebuild_prefect_settings() -> None:
    """Prefect read its settings and configured logging when the zygote imported it: redo both."""
    import prefect
    import prefect.context
    from prefect.logging import configuration

    prefect.context.refresh_global_settings_context()
    configuration.PROCESS_LOGGING_CONFIG.clear()
    configuration.setup_logging()
    prefect._initialize_plugins()  # a no-op unless the run's settings enable plugins


def _system_exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _exit(code: int | None) -> NoReturn:
    """End the way the interpreter does (wait for non-daemon threads, run atexit, flush); None: die of SIGTERM."""
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_Finalize calls first
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = code or 1
    finally:
        if code is None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            os.kill(os.getpid(), signal.SIGTERM)
            code = 128 + signal.SIGTERM
        os._exit(code)
