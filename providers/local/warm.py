"""The provider's side of the warm engine: owning the zygote and asking it for supervisors (blocking code).

Which runs go warm: those whose command is Prefect's default (``prefect flow-run
execute``) resolved, through the run's own PATH, to the ``prefect`` of the
dispatcher's interpreter, and whose environment sets no variable that changes how
an interpreter starts. Everything else - a custom command, another interpreter (a
per-run virtualenv), ``PYTHONHOME``... - starts cold, as before.

The zygote is started on the first warm run, and again whenever a run finds it dead;
when it cannot be used the run starts cold, so a broken zygote never stops a run.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from providers.local import rundir, warm_child, zygote
from providers.local.launch import PACKAGE_ROOT, ZygoteUncertain

logger = logging.getLogger(__name__)

#: How long a new zygote may take to import Prefect before runs stop waiting for it (they start cold).
READY_TIMEOUT_S = 60.0
#: How long one fork request may take (sending the spec, forking, replying).
REQUEST_TIMEOUT_S = 10.0
#: After a zygote failed to start, runs start cold for this long before the next attempt.
RETRY_START_AFTER_S = 30.0
ZYGOTE_LOG = "zygote.log"
DEFAULT_ARGV = ["prefect", "flow-run", "execute"]


def is_warm_eligible(argv: list[str], env: dict[str, str]) -> bool:
    """True when forking the pre-imported engine runs exactly what the cold command would run."""
    if argv != DEFAULT_ARGV:
        return False
    if any(name.startswith("PYTHON") and name not in warm_child.WARM_PYTHON_VARIABLES for name in env):
        return False
    found = shutil.which("prefect", path=env.get("PATH", os.defpath))
    ours = Path(sys.executable).parent / "prefect"
    return found is not None and _same_file(Path(found), ours)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


class Zygote:
    """One zygote process per provider, started lazily and replaced when it dies."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._lock = threading.Lock()  # one request at a time: each takes milliseconds
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._retry_start_at = 0.0

    def ready(self) -> bool:
        """Start the zygote if there is none or it died, and wait for it; False when it cannot be used.

        Called before the run directory exists: a run directory without a supervisor for long looks
        like a submit that died, so the zygote's start (seconds of imports) must not happen inside it.
        """
        with self._lock:
            return self._ensure_ready()

    def start_supervisor(self, run_dir: Path, spec: dict[str, Any]) -> int | None:
        """The pid of the supervisor the zygote forked for this run; None when nothing was started.

        Never starts a zygote (see ready()); raises ZygoteUncertain when the zygote took the
        request but did not answer (its supervisor, if any, records itself in the run directory).
        """
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                return None
            try:
                reply = self._request({"run_dir": str(run_dir), "spec": spec})
            except OSError as exc:  # the request did not get through: nothing was started
                logger.warning("the warm engine's zygote failed (%s); it is replaced on the next run", exc)
                self._discard()
                return None
            if "pid" in reply:
                return int(reply["pid"])
            logger.warning("the warm engine's zygote refused a run: %s", reply.get("error"))
            return None

    def close(self) -> None:
        """Close our end: the zygote exits; supervisors it started run on."""
        with self._lock:
            self._discard(graceful=True)

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._socket is not None
        self._socket.settimeout(REQUEST_TIMEOUT_S)
        zygote.send_frame(self._socket, request)  # OSError: not (wholly) sent, so not forked
        try:
            reply = zygote.recv_frame(self._socket)
        except (OSError, EOFError, ValueError) as exc:
            self._discard()
            raise ZygoteUncertain(f"the warm engine's zygote did not answer: {exc}") from None
        if reply is None:
            self._discard()
            raise ZygoteUncertain("the warm engine's zygote ended before answering")
        return reply

    def _ensure_ready(self) -> bool:
        if self._process is not None and self._process.poll() is None:
            return True
        if self._process is not None:
            logger.warning("the warm engine's zygote %s ended (%s); starting a new one", self._process.pid, self._process.returncode)
            self._discard()
        if time.monotonic() < self._retry_start_at:
            return False
        try:
            self._start()
            return True
        except (OSError, EOFError, ValueError) as exc:
            logger.warning("could not start the warm engine's zygote (%s); runs start cold for %g s", exc, RETRY_START_AFTER_S)
            self._discard()
            self._retry_start_at = time.monotonic() + RETRY_START_AFTER_S
            return False

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._state_dir.mkdir(mode=rundir.PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            log_fd = os.open(self._state_dir / ZYGOTE_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, rundir.PRIVATE_FILE_MODE)
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "providers.local.zygote", str(theirs.fileno())],
                    cwd=self._state_dir,
                    env=zygote_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log_fd,
                    stderr=log_fd,
                    pass_fds=(theirs.fileno(),),
                    start_new_session=True,  # a Ctrl-C in the dispatcher's terminal is not for it
                )
            finally:
                os.close(log_fd)
        finally:
            theirs.close()
        self._socket = ours
        started = time.monotonic()
        ours.settimeout(READY_TIMEOUT_S)
        hello = zygote.recv_frame(ours)
        if not hello or not hello.get("ready"):
            raise EOFError("the zygote ended before it was ready")
        logger.info("warm engine zygote %s ready in %.1f s", self._process.pid, time.monotonic() - started)

    def _discard(self, graceful: bool = False) -> None:
        sock, process = self._socket, self._process
        self._socket = self._process = None
        if sock is not None:
            sock.close()
        if process is None:
            return
        if graceful:
            try:
                process.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                pass
        process.kill()
        process.wait()


def zygote_env() -> dict[str, str]:
    """The supervisor's environment (never the dispatcher's), plus what importing Prefect reads."""
    env = {"PYTHONPATH": str(PACKAGE_ROOT), "PATH": os.environ.get("PATH", os.defpath)}
    for name in ("LANG", "HOME", "TMPDIR", "PREFECT_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
