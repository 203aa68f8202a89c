"""Replica membership and watch hand-over in the ledger, on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
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


async def _place(ledger, attempt_id: str, key: str, size: int | None, workspace: str = "acme") -> int:
    ref = AttemptRef(flow_run_id=f"run-{attempt_id}", attempt_id=attempt_id)
    _, kept_key, group = await ledger.record_grouped_submission(
        ref, f"arn:task/{attempt_id}", T0, workspace=workspace, pool="p", provider="ecs", watch_key=key, batch_size=size)
    assert kept_key == key
    return group


async def test_watch_groups_fill_in_order_and_ended_runs_leave_room_in_theirs(open_ledger) -> None:
    ledger = await open_ledger()
    assert [await _place(ledger, f"a-{n}", "k1", 3) for n in range(7)] == [0, 0, 0, 1, 1, 1, 2]
    assert await _place(ledger, "a-4", "k1", 3) == 1  # recorded again: the first group stays
    await ledger.meter("a-1", T0, T0 + timedelta(seconds=5))  # ended: group 0 has room again
    assert await _place(ledger, "a-7", "k1", 3) == 0
    assert await _place(ledger, "a-8", "k1", 3) == 2
    assert await _place(ledger, "b-0", "k2", 3) == 0  # another batch key counts apart
    assert await _place(ledger, "c-0", "k1", 3, workspace="other") == 0  # and another workspace
    [row] = [r for r in await ledger.unmetered("acme") if r.attempt_id == "a-8"]
    assert (row.watch_key, row.watch_group, row.infrastructure_id) == ("k1", 2, "arn:task/a-8")


async def test_a_key_without_a_batch_size_is_one_group(open_ledger) -> None:
    ledger = await open_ledger()
    assert {await _place(ledger, f"a-{n}", "location", None) for n in range(5)} == {0}


async def test_replicas_recording_at_once_never_overfill_a_group(open_ledger) -> None:
    """Three replicas (three engines on one database) record 60 submissions concurrently: groups of 10,
    each exactly full, because assignments of one key are serialised by the database."""
    ledgers = [await open_ledger() for _ in range(3)]
    groups = await asyncio.gather(*(_place(ledgers[n % 3], f"a-{n}", "k", 10) for n in range(60)))
    assert sorted(Counter(groups).items()) == [(group, 10) for group in range(6)]


async def test_group_sizes_and_fresh_unadopted_submissions_in_given_groups(open_ledger) -> None:
    ledger = await open_ledger()
    for n in range(5):
        await _place(ledger, f"a-{n}", "k1", 2)  # groups 0, 0, 1, 1, 2
    await _place(ledger, "b-0", "k2", None)
    await _place(ledger, "c-0", "k1", 2, workspace="other")
    await ledger.meter("a-4", T0, T0 + timedelta(seconds=1))  # ended: no longer in flight
    assert await ledger.watch_group_sizes("acme") == {("k1", 0): 2, ("k1", 1): 2, ("k2", 0): 1}
    await ledger.set_watcher(["a-2"], "r1")  # adopted already
    fresh = await ledger.fresh_in_groups("acme", [("k1", 1), ("k2", 0), ("k1", 2)], since=T0)
    assert sorted(row.attempt_id for row in fresh) == ["a-3", "b-0"]
    assert await ledger.fresh_in_groups("acme", [("k1", 1)], since=T0 + timedelta(seconds=1)) == []  # older
