"""A cache whose misses are computed once, however many callers ask at the same time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """``await get(key, compute)``: a cached value, or one shared ``compute()`` for concurrent misses.

    Failures are not cached: every waiter of the failed flight gets the error and the
    next call computes again. A cancelled waiter does not cancel the shared flight.
    """

    def __init__(self) -> None:
        self._values: dict[Hashable, T] = {}
        self._flights: dict[Hashable, asyncio.Task[T]] = {}

    def peek(self, key: Hashable) -> T | None:
        return self._values.get(key)

    def forget(self, key: Hashable) -> None:
        self._values.pop(key, None)

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        if key in self._values:
            return self._values[key]
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(compute())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._land(key, done))
        return await asyncio.shield(flight)

    def _land(self, key: Hashable, flight: asyncio.Task[T]) -> None:
        self._flights.pop(key, None)
        if not flight.cancelled() and flight.exception() is None:
            self._values[key] = flight.result()
