"""``Emulator``: the face every cloud emulator shows a test.

The same knobs and introspection on every cloud — ``faults``, ``calls``,
``permissions``, ``reset_calls()``, ``errors``, ``start()``/``stop()``/``with``,
``endpoint_url`` — so provider contract tests can drive any of them alike.
A subclass builds its backend and sets ``protocol``; it overrides ``tick()``
to move simulated time on and ``shutdown()`` to release what its backend
holds (processes, files).
"""

from __future__ import annotations

import atexit
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from .calls import CallLog
from .faults import FaultDice, Faults
from .http import HttpServer, Request, Response, WireProtocol
from .realism import Profile, Realism

E = TypeVar("E", bound="Emulator")
T = TypeVar("T")


def poll_until(probe: Callable[[], T | None], timeout: float, interval: float = 0.01) -> T | None:
    """Call ``probe`` until it returns something other than None; None once ``timeout`` has passed.

    ``probe`` runs at least once, and once more after the deadline, so a wait
    never fails on a state it did not look at. For a test's ``wait_for_*``
    (probe: tick the backend, look under its lock) and for a long poll such
    as Cloud Run's ``:wait`` (answer when done or at the deadline).
    """
    deadline = time.monotonic() + timeout
    while True:
        last_look = time.monotonic() >= deadline
        found = probe()
        if found is not None or last_look:
            return found
        time.sleep(interval)


class Emulator:
    protocol: WireProtocol
    """Set by the subclass's ``__init__``; every request goes to ``protocol.handle``."""

    def __init__(self, dice: FaultDice, *, tick_s: float = 0.01, realism: Realism | None = None,
                 profile: Profile | None = None):
        self.realism = realism
        """Realistic mode (``kit.realism``), or None: the emulator's default behaviour."""
        self._profile = profile
        self.dice = dice
        if realism is not None:
            if profile is None:
                raise ValueError(f"{type(self).__name__} has no realistic profile")
            profile.apply(dice.faults, realism)
            if realism.clock is not None:
                dice.use_clock(realism.clock)
        self.call_log = CallLog()
        self.errors: list[str] = []
        """Emulator bugs: handler crashes, ticker exceptions, responses that break their schema."""
        self._server = HttpServer(self, errors=self.errors, ticker=self.tick, tick_s=tick_s)

    # -- what a subclass provides -----------------------------------------------------------

    def handle(self, request: Request) -> Response:
        return self.protocol.handle(request)

    def tick(self) -> None:
        """Move simulated time on; called every ``tick_s`` by the server's ticker thread."""

    def shutdown(self) -> None:
        """Release backend resources after the server stopped."""

    # -- lifecycle --------------------------------------------------------------------------

    def start(self: E) -> E:
        if not self._server.running:
            self._server.start()
            atexit.register(self.stop)  # never leave a backend's processes behind
        return self

    def stop(self) -> None:
        atexit.unregister(self.stop)
        self._server.stop()
        self.shutdown()

    def __enter__(self: E) -> E:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if not self._server.running:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.endpoint_url

    # -- knobs and introspection ------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self.dice.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        if self.realism is not None and self._profile is not None:
            self._profile.apply(faults, self.realism)  # new knobs stay realistic
        self.dice.faults = faults  # re-seeds the RNG, refills the rate-limit buckets

    @property
    def calls(self) -> Counter[str]:
        """Requests per operation name, faulted or not."""
        return self.call_log.counts

    @property
    def permissions(self) -> Counter[str]:
        """Cloud permissions the recognised calls needed (``ecs:RunTask``...), for least-privilege tests."""
        return self.call_log.permissions

    def reset_calls(self) -> None:
        self.call_log.reset()
