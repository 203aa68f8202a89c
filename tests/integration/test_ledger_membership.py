"""Replica membership and watch hand-over in the ledger, on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dispatcher.ledger import AttemptRef
from tests.integration.conftest import migrate_to, run_sql

pytestmark = pytest.mark.asyncio
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


async def test_beats_count_up_per_replica_and_workspace(open_ledger) -> None:
    ledger = await open_ledger()
    assert [(m.replica_id, m.beat) for m in await ledger.beat("acme", "r1", "host-a:1", T0)] == [("r1", 1)]
    await ledger.beat("acme", "r2", "host-b:1", T0)
    await ledger.beat("other", "r3", "host-c:1", T0)  # another workspace: not a member of acme
    members = await ledger.beat("acme", "r1", "host-a:1", T0 + timedelta(seconds=3))
    assert sorted((m.replica_id, m.name, m.beat) for m in members) == [("r1", "host-a:1", 2), ("r2", "host-b:1", 1)]


async def test_a_replica_that_leaves_is_no_longer_listed(open_ledger) -> None:
    ledger = await open_ledger()
    await ledger.beat("acme", "r1", "a", T0)
    await ledger.beat("acme", "r2", "b", T0)
    await ledger.leave("acme", ["r2"])
    await ledger.leave("acme", [])  # nothing to do
    assert [m.replica_id for m in await ledger.beat("acme", "r1", "a", T0)] == ["r1"]


async def test_watcher_is_null_after_submission_and_set_by_adoption(open_ledger) -> None:
    ledger = await open_ledger()
    ids = [f"attempt-{n}" for n in range(1203)]  # more than one IN (...) chunk
    for attempt_id in ids:
        await ledger.record_claim(AttemptRef(flow_run_id=attempt_id, attempt_id=attempt_id), "acme", "p", "ecs", T0)
    assert set((await ledger.watchers(ids)).values()) == {None}
    await ledger.set_watcher(ids[:1100], "r2")
    watchers = await ledger.watchers(ids)
    assert len(watchers) == len(ids)
    assert [watchers[i] for i in ids[:1100]] == ["r2"] * 1100 and [watchers[i] for i in ids[1100:]] == [None] * 103
    assert await ledger.watchers(["unknown"]) == {}


async def test_upgrade_from_0003_keeps_rows_in_flight_unadopted(dsn, open_ledger) -> None:
    await migrate_to(dsn, "0003")
    await run_sql(dsn, "INSERT INTO runs (attempt_id, flow_run_id, attempt, workspace, pool, provider, infrastructure_id, "
                       "claimed_at, submitted_at, updated_at) VALUES ('a-1', 'run-1', 1, 'acme', 'p', 'ecs', 'arn:task/1', "
                       "'2026-11-30 12:00:00+00:00', '2026-11-30 12:00:01+00:00', '2026-11-30 12:00:01+00:00')")
    ledger = await open_ledger()  # migrates to head
    [row] = await ledger.unmetered("acme")
    assert (row.attempt_id, row.infrastructure_id) == ("a-1", "arn:task/1")
    assert await ledger.watchers(["a-1"]) == {"a-1": None}


async def test_one_replica_per_lease_re_drives_an_unsubmitted_claim(open_ledger) -> None:
    """Two replicas whose views differ for a moment both find the claim theirs: one re-drives it."""
    ledger = await open_ledger()
    ref = AttemptRef(flow_run_id="run-1", attempt_id="a-1")
    await ledger.record_claim(ref, "acme", "p", "cloud-run", T0)
    now = datetime.now(timezone.utc)
    assert await ledger.take_redrive("a-1", "r1", now, lease_s=60)
    assert not await ledger.take_redrive("a-1", "r2", now + timedelta(seconds=1), lease_s=60)
    assert await ledger.take_redrive("a-1", "r1", now + timedelta(seconds=5), lease_s=60)  # its own next try
    assert await ledger.take_redrive("a-1", "r2", now + timedelta(seconds=66), lease_s=60)  # r1 went quiet
    assert not await ledger.take_redrive("a-1", "r1", now + timedelta(seconds=67), lease_s=60)
    await ledger.record_submission(ref, "exec-1", now + timedelta(seconds=68), workspace="acme", pool="p",
                                   provider="cloud-run")
    assert not await ledger.take_redrive("a-1", "r2", now + timedelta(seconds=300), lease_s=60)  # submitted
    assert not await ledger.take_redrive("unknown", "r1", now, lease_s=60)
