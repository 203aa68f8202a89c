"""The dispatcher's housekeeping loop: every provider swept, a failing one counted and logged once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dispatcher import metrics
from dispatcher.loops import housekeeping


class FakeProvider:
    """Only what the loop uses: a kind and housekeeping()."""

    def __init__(self, kind: str, fail: bool = False) -> None:
        self.kind = kind
        self.fail = fail
        self.calls = 0
        self.called = asyncio.Event()

    async def housekeeping(self) -> None:
        self.calls += 1
        self.called.set()
        if self.fail:
            raise RuntimeError("broken provider")


def errors() -> float:
    return metrics.LOOP_ERRORS.labels(housekeeping.ALL_WORKSPACES, "housekeeping")._value.get()


async def test_a_failing_provider_is_counted_every_time_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    broken, fine = FakeProvider("broken", fail=True), FakeProvider("fine")
    failing: set[str] = set()
    before = errors()
    with caplog.at_level(logging.INFO, logger=housekeeping.__name__):
        for _ in range(3):
            await housekeeping._sweep(broken, failing)  # type: ignore[arg-type]
            await housekeeping._sweep(fine, failing)  # type: ignore[arg-type]
        broken.fail = False
        await housekeeping._sweep(broken, failing)  # type: ignore[arg-type]
    assert errors() - before == 3
    assert (broken.calls, fine.calls) == (4, 3)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "housekeeping of the broken provider failed; retrying on every sweep",
        "housekeeping of the broken provider works again",
    ]


async def test_the_loop_sweeps_providers_created_after_it_started() -> None:
    providers: list[FakeProvider] = []
    loop = asyncio.create_task(housekeeping.keep_house(lambda: providers, interval_s=0.01))
    try:
        late = FakeProvider("late", fail=True)
        providers.append(late)
        await asyncio.wait_for(late.called.wait(), timeout=10)
        late.called.clear()
        await asyncio.wait_for(late.called.wait(), timeout=10)  # a failure does not end the loop
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop

