"""InFlight's index of watched infrastructure, which recovery asks once per active run per pass."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

from prefect.workers.base import BaseJobConfiguration

from dispatcher.loops.inflight import InFlight
from dispatcher.loops.served import Attempt, TrackedRun


def tracked(flow_run_id=None, attempt_id=None, infrastructure_id: str = "task-1") -> TrackedRun:
    flow_run_id = flow_run_id or uuid4()
    attempt = Attempt(flow_run_id=flow_run_id, attempt_id=attempt_id or flow_run_id)
    return TrackedRun(attempt=attempt, pool=None, infrastructure_id=infrastructure_id, configuration=BaseJobConfiguration(),
                      submitted_at=datetime.now(timezone.utc), max_runtime_s=60)


def test_watching_infrastructure_follows_watch_and_forget() -> None:
    inflight = InFlight("w")
    first = tracked(infrastructure_id="task-1")
    retry = tracked(first.flow_run_id, uuid4(), infrastructure_id="task-2")
    inflight.watch(first)
    inflight.watch(retry)
    assert inflight.watching_infrastructure(first.flow_run_id, "task-1")
    assert inflight.watching_infrastructure(first.flow_run_id, "task-2")
    assert not inflight.watching_infrastructure(first.flow_run_id, "task-3")
    assert not inflight.watching_infrastructure(uuid4(), "task-1")  # another run's
    inflight.forget(first)
    assert not inflight.watching_infrastructure(first.flow_run_id, "task-1")
    assert inflight.watching_infrastructure(first.flow_run_id, "task-2")
    inflight.forget(retry)
    inflight.forget(retry)  # twice: a no-op
    assert not inflight.watching_infrastructure(first.flow_run_id, "task-2") and inflight.watched() == []


def test_a_second_watch_of_an_attempt_keeps_the_first_and_its_index() -> None:
    inflight = InFlight("w")
    first = tracked(infrastructure_id="task-1")
    inflight.watch(first)
    again = tracked(first.flow_run_id, first.attempt.attempt_id, infrastructure_id="task-9")
    inflight.watch(again)  # the attempt is already watched: ignored
    assert inflight.watched() == [first]
    assert not inflight.watching_infrastructure(first.flow_run_id, "task-9")
    inflight.forget(again)  # forgets the attempt, whichever object names it
    assert not inflight.watching_infrastructure(first.flow_run_id, "task-1") and inflight.watched() == []
