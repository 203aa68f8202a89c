"""A cloud emulator in its own process, so the dispatcher's CPU, RSS and event-loop figures are its own.

``RemoteEmulator(factory, **kwargs)`` forks a process that builds ``factory(**kwargs)`` (an
emulator class from ``tests/emulators``), serves it, and answers questions over a pipe:
the calls per operation, its errors, its CPU time, how many containers it started, and how
many answers were throttling (HTTP 429, or an AWS ``Throttling*`` error body): the cloud's
own count, not the client's.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import Any

THROTTLE_MARKERS = (b"Throttl", b"RateExceeded", b"TooManyRequests")


def started_count(emu: Any) -> int:
    """Containers the emulator was asked to start: ECS tasks, Cloud Run executions, ACI container groups."""
    if hasattr(emu, "deleted_groups"):  # ACI: every PUT that (re)deployed a group
        return sum(group.puts for group in [*emu.groups.values(), *emu.deleted_groups])
    for attribute in ("tasks", "executions"):
        found = getattr(emu, attribute, None)
        if found is not None:
            return len(found)
    raise AttributeError(f"{type(emu).__name__} has no started-containers collection")


def _is_throttle(status: int, body: bytes) -> bool:
    return status == 429 or (status == 400 and any(marker in body[:300] for marker in THROTTLE_MARKERS))


def _serve(conn, factory: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    throttled = [0]
    with factory(**kwargs) as emu:
        handle = emu.handle

        def counting(request):
            response = handle(request)
            if _is_throttle(response.status, response.body):
                throttled[0] += 1
            return response

        emu.handle = counting  # the server looks the method up on the instance: every request passes here
        conn.send(emu.endpoint_url)
        answers = {
            "calls": lambda: dict(emu.calls), "errors": lambda: list(emu.errors), "cpu": time.process_time,
            "started": lambda: started_count(emu), "throttled": lambda: throttled[0],
        }
        while (what := conn.recv()) != "stop":
            conn.send(answers[what]())
        conn.send(None)


class RemoteEmulator:
    def __init__(self, factory: Callable[..., Any], **kwargs: Any) -> None:
        self._conn, child = multiprocessing.Pipe()
        context = multiprocessing.get_context("fork")
        self._process = context.Process(target=_serve, args=(child, factory, kwargs), daemon=True)
        self.endpoint_url = ""

    def __enter__(self) -> RemoteEmulator:
        self._process.start()
        self.endpoint_url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._ask("stop")
        finally:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()

    def _ask(self, what: str) -> Any:
        self._conn.send(what)
        return self._conn.recv()

    @property
    def calls(self) -> dict[str, int]:
        return self._ask("calls")

    @property
    def errors(self) -> list[str]:
        return self._ask("errors")

    @property
    def cpu_s(self) -> float:
        return self._ask("cpu")

    @property
    def started(self) -> int:
        return self._ask("started")

    @property
    def throttled(self) -> int:
        return self._ask("throttled")
