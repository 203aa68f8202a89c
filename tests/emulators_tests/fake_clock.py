"""A clock tests move by hand: the emulators' rate buckets refill without sleeping."""

from __future__ import annotations


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
