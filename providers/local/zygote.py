"""The warm engine's zygote: a process that imported Prefect once and forks a supervisor per run.

Usage: ``python -m providers.local.zygote FD`` where FD is its end of a socket pair
whose other end the provider keeps (:mod:`providers.local.warm`).

Starting ``prefect flow-run execute`` costs a few seconds of imports per run (the
CLI, then the engine). The zygote pays them once: it imports Prefect and the flow
engine, tells the provider it is ready, then for each request ``{"run_dir", "spec"}``
forks a child that becomes the run's supervisor - a session of its own, its output
in the run directory's supervisor.log, subreaper, recording itself - exactly as
``python -m providers.local.supervisor`` does with a spec read from stdin. That
supervisor then forks the engine instead of exec'ing it (:mod:`providers.local.warm_child`).

The spec arrives over the socket and is never written. The zygote runs with the
supervisor's minimal environment, never the dispatcher's, and stays single-threaded
(fork copies only the calling thread). It exits when the provider's end closes.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from providers.local import rundir, warm_child
from providers.local import supervisor as sup

_HEADER = struct.Struct("!I")
#: A request larger than this is not one the provider wrote (the spec's own bound, plus the run dir).
MAX_FRAME_BYTES = sup.MAX_SPEC_BYTES + 64 * 1024
_REAP_EVERY_S = 1.0


def send_frame(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode("utf-8")
    sock.sendall(_HEADER.pack(len(data)) + data)


def recv_frame(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or None at EOF before a message began."""
    header = _recv_exactly(sock, _HEADER.size, eof_ok=True)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"a message of {size} bytes is larger than {MAX_FRAME_BYTES}")
    body = _recv_exactly(sock, size, eof_ok=False)
    message = json.loads(body or b"")
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    return message


def _recv_exactly(sock: socket.socket, size: int, eof_ok: bool) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            if eof_ok and remaining == size:
                return None
            raise EOFError("the connection closed in the middle of a message")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def preload() -> None:
    """What ``prefect flow-run execute`` and ``python -m prefect.engine`` import before running a flow."""
    import prefect  # noqa: F401
    import prefect.client.orchestration  # noqa: F401
    import prefect.deployments.steps.core  # noqa: F401
    import prefect.engine  # noqa: F401
    import prefect.flow_engine  # noqa: F401
    import prefect.flows  # noqa: F401
    import prefect.logging.handlers  # noqa: F401
    import prefect.settings  # noqa: F401
    import prefect.task_engine  # noqa: F401 - flows with tasks
    import prefect.utilities.visualization  # noqa: F401 - loaded by every flow's first call
    from prefect._internal import control_listener

    # The warm engine hands SIGTERMs to the infrastructure through it (providers.local.warm_child).
    if not hasattr(control_listener, "_set_intent"):
        raise RuntimeError("this Prefect has no runner intents; the warm engine needs Prefect 3.8 or later")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m providers.local.zygote FD", file=sys.stderr)
        return 2
    sock = socket.socket(fileno=int(argv[1]))
    warm_child.remember_interpreter_path()
    started = time.monotonic()
    preload()
    print(f"zygote {os.getpid()}: Prefect imported in {time.monotonic() - started:.2f} s", flush=True)
    send_frame(sock, {"ready": True, "pid": os.getpid()})
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while True:
        _reap_children()
        if not poller.poll(_REAP_EVERY_S * 1000):
            continue
        request = recv_frame(sock)
        if request is None:  # the provider closed its end, or the dispatcher is gone
            return 0
        send_frame(sock, _fork_supervisor(sock, request))


def _fork_supervisor(sock: socket.socket, request: dict[str, Any]) -> dict[str, Any]:
    """Fork the run's supervisor; {"pid"} or {"error"} (then nothing was started)."""
    if threading.active_count() != 1:
        return {"error": f"the zygote has {threading.active_count()} threads; it forks only when it has one"}
    run_dir, spec = request.get("run_dir"), request.get("spec")
    if not isinstance(run_dir, str) or not isinstance(spec, dict):
        return {"error": "a request needs run_dir and spec"}
    sys.stdout.flush()
    sys.stderr.flush()
    # Blocked before the fork, so the supervisor has them blocked from its first instruction.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, sup.WAKE_SIGNALS)
    pid = os.fork()
    if pid == 0:
        _become_supervisor(sock, Path(run_dir), spec)
    signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return {"pid": pid}


def _become_supervisor(sock: socket.socket, run_dir: Path, spec: dict[str, Any]) -> None:
    """In the forked child: the run's supervisor, as ``python -m providers.local.supervisor`` would be."""
    code = 1
    try:
        sock.close()
        os.setsid()  # outlives the dispatcher and the zygote, like a cold supervisor
        log_fd = os.open(run_dir / rundir.SUPERVISOR_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, rundir.PRIVATE_FILE_MODE)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.closerange(3, 1 << 16)
        os.chdir(run_dir)
        sup._become_subreaper()
        sup._record_self(run_dir)
        spec.setdefault("secrets", [])
        code = sup.supervise_run(run_dir, spec)
    except BaseException:  # noqa: BLE001 - never back into the zygote's loop
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap_children() -> None:
    """Reap supervisors that ended (they are our children until we exit)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    sys.exit(main(sys.argv))
