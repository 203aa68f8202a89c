"""Budgets in the ledger, on SQLite and PostgreSQL: admissions of two replicas racing, alerts once,
the event outbox leased by one replica at a time, usage grouped and paged."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from dispatcher.config.usage import BudgetMode
from dispatcher.ledger import AttemptRef
from dispatcher.ledger.models import BudgetLimit, RunFacts
from dispatcher.ledger.usage import GroupBy, RunFilter
from dispatcher.policy.budget import BudgetUse
from dispatcher.usage.events import threshold_event

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
FACTS = RunFacts(deployment_id="d-1", deployment_name="nightly", flow_name="etl", flow_run_name="brave-fox", vcpu=2,
                 memory_mib=4096)


async def _admit(ledger, i: int, limits: list[BudgetLimit], pool: str = "p") -> bool:
    attempt = AttemptRef(flow_run_id=f"run-{i}", attempt_id=f"attempt-{i}")
    await ledger.record_claim(attempt, "acme", pool, "local", NOW)
    decision = await ledger.admit(attempt, workspace="acme", pool=pool, provider="local", facts=FACTS, limits=limits,
                                  mode=BudgetMode.HOLD, now=NOW)
    return decision.allowed


async def test_two_replicas_admitting_at_once_never_exceed_the_budget(open_ledger):
    """30 attempts race through two ledgers (two replicas' connection pools) for a 10-minute budget:
    each admitted attempt counts one minute in flight, so exactly 10 are admitted."""
    replicas = [await open_ledger(), await open_ledger()]
    limits = [BudgetLimit(pool=None, minutes=10)]
    admitted = await asyncio.gather(*(_admit(replicas[i % 2], i, limits) for i in range(30)))
    assert sum(admitted) == 10
    [use] = await replicas[0].budget_uses("acme", "2026-11", limits, NOW)
    assert use.used_minutes == 10


async def test_an_admitted_attempt_stays_admitted_and_a_pool_budget_applies_to_its_pool_only(open_ledger):
    ledger = await open_ledger()
    limits = [BudgetLimit(pool=None, minutes=100), BudgetLimit(pool="small", minutes=1)]
    assert await _admit(ledger, 1, limits, pool="small")
    assert not await _admit(ledger, 2, limits, pool="small")  # the pool's one minute is in flight
    assert await _admit(ledger, 3, limits[:1], pool="big")  # other pools only have the workspace's budget
    assert await _admit(ledger, 1, limits, pool="small")  # a re-driven submission of attempt 1
    row = await ledger.get("attempt-1")
    assert (row.deployment_name, row.flow_name, row.flow_run_name, row.vcpu, row.memory_mib) == (
        "nightly", "etl", "brave-fox", 2, 4096)


async def test_in_flight_minutes_count_in_the_current_month_only(open_ledger):
    ledger = await open_ledger()
    assert await _admit(ledger, 1, [])
    await ledger.record_submission(AttemptRef(flow_run_id="run-1", attempt_id="attempt-1"), "pid-1", NOW,
                                   workspace="acme", pool="p", provider="local")
    later = NOW + timedelta(minutes=7, seconds=1)
    assert await ledger.month_use_by_pool("acme", "2026-11", later) == {"p": 8}  # 7 min 1 s: 8 started minutes
    assert await ledger.month_use_by_pool("acme", "2026-10", later) == {}


async def test_a_threshold_alerts_once_per_month_across_replicas(open_ledger):
    replicas = [await open_ledger(), await open_ledger()]
    use = BudgetUse(workspace="acme", month="2026-11", budget_minutes=100, used_minutes=85)
    won = await asyncio.gather(*(ledger.record_alert(use, 80, threshold_event(use, 80, NOW), NOW)
                                 for ledger in replicas * 3))
    assert sum(won) == 1
    assert await replicas[0].alerts("acme", "2026-11") == [("", 80)]
    assert len(await replicas[1].lease_events("acme", NOW)) == 1  # its event was queued with it, once


async def test_outbox_events_are_leased_by_one_replica_and_retried_after_a_failure(open_ledger):
    first, second = await open_ledger(), await open_ledger()
    for pct in (80, 90, 100):
        use = BudgetUse(workspace="acme", month="2026-11", budget_minutes=10, used_minutes=10)
        await first.record_alert(use, pct, threshold_event(use, pct, NOW), NOW)
    leased = await asyncio.gather(first.lease_events("acme", NOW), second.lease_events("acme", NOW))
    assert sorted(len(batch) for batch in leased) == [0, 3]
    batch = max(leased, key=len)
    await first.events_delivered([batch[0].event_id], NOW)
    await first.event_failed(batch[1].event_id, NOW + timedelta(seconds=5), "ConnectError")
    assert await first.undelivered_events("acme") == 2
    retried = await second.lease_events("acme", NOW + timedelta(seconds=61))  # after the lease of the third ran out
    assert {event.event_id for event in retried} == {batch[1].event_id, batch[2].event_id}
    assert all(event.attempts == 2 for event in retried)
    assert await first.drop_stale_events("acme", NOW + timedelta(days=8)) == 2


async def test_usage_is_grouped_and_the_runs_behind_a_figure_are_paged(open_ledger):
    ledger = await open_ledger()
    for i, (pool, minutes) in enumerate([("a", 3), ("a", 5), ("b", 1)]):
        assert await _admit(ledger, i, [], pool=pool)
        attempt = AttemptRef(flow_run_id=f"run-{i}", attempt_id=f"attempt-{i}")
        await ledger.record_submission(attempt, f"pid-{i}", NOW, workspace="acme", pool=pool, provider="local")
        await ledger.meter(attempt.attempt_id, NOW, NOW + timedelta(minutes=minutes))
    by_pool = {g.key: g for g in await ledger.grouped_usage("acme", "2026-11", GroupBy.POOL)}
    assert {k: (g.attempts, g.billed_minutes) for k, g in by_pool.items()} == {"a": (2, 8), "b": (1, 1)}
    assert by_pool["a"].vcpu_seconds == 2 * 8 * 60 and by_pool["a"].memory_gib_seconds == 4 * 8 * 60
    [day] = await ledger.grouped_usage("acme", "2026-11", GroupBy.DAY)
    assert (day.key, day.billed_minutes) == ("2026-11-20", 9)
    [deployment] = await ledger.grouped_usage("acme", "2026-11", GroupBy.DEPLOYMENT)
    assert (deployment.key, deployment.label) == ("d-1", "etl/nightly")
    page, total = await ledger.runs_page("acme", "2026-11", RunFilter(pool="a"), offset=0, limit=1)
    assert total == 2 and [r.attempt_id for r in page] == ["attempt-1"]  # newest teardown first
    page, total = await ledger.runs_page("acme", "2026-11", RunFilter(day="2026-11-20", flow="unknown"), 0, 10)
    assert (page, total) == ([], 0)
    assert await ledger.usage_months("acme") == ["2026-11"]


async def test_rows_from_before_0003_keep_nulls_and_are_reported_unknown_and_unpriced(dsn):
    from dispatcher.ledger import Ledger
    from tests.integration.conftest import migrate_to, run_sql

    await migrate_to(dsn, "0002")
    t = "'2026-11-05 10:00:00+00:00'"
    await run_sql(dsn, "INSERT INTO runs (attempt_id, flow_run_id, attempt, workspace, pool, provider, infrastructure_id, "
                       "claimed_at, submitted_at, started_at, stopped_at, compute_seconds, billed_minutes, usage_month, "
                       f"metered_at, final_state, updated_at) VALUES ('old', 'old', 1, 'acme', 'p', 'ecs', 'arn:1', {t}, "
                       f"{t}, {t}, {t}, 300.0, 5, '2026-11', {t}, 'Completed', {t})")
    ledger = await Ledger.open(dsn)
    try:
        row = await ledger.get("old")
        assert (row.deployment_id, row.flow_name, row.vcpu, row.memory_mib, row.admitted_at) == (None,) * 5
        [group] = await ledger.grouped_usage("acme", "2026-11", GroupBy.DEPLOYMENT)
        assert (group.key, group.label, group.billed_minutes, group.unpriced_attempts) == ("unknown", "unknown/unknown", 5, 1)
    finally:
        await ledger.close()


async def test_a_used_up_month_admits_again_when_the_month_rolls_over_or_its_budget_is_raised(open_ledger):
    ledger = await open_ledger()
    limits = [BudgetLimit(pool=None, minutes=1)]
    assert await _admit(ledger, 1, limits)
    assert not await _admit(ledger, 2, limits)
    [before] = await ledger.budget_uses("acme", "2026-11", limits, NOW)
    assert (before.budget_minutes, before.used_minutes) == (1, 1)
    await ledger.set_budget("acme", None, "2026-11", 2, "platform", NOW)  # an admin raises this month's budget
    assert await _admit(ledger, 2, limits)
    december = NOW.replace(month=12, day=1)
    attempt = AttemptRef(flow_run_id="run-3", attempt_id="attempt-3")
    await ledger.record_claim(attempt, "acme", "p", "local", december)
    # Two attempts still in flight count in December too (they will be billed when they stop): 2 + 1 > 2 ...
    assert not (await ledger.admit(attempt, workspace="acme", pool="p", provider="local", facts=FACTS,
                                   limits=[BudgetLimit(pool=None, minutes=2)], mode=BudgetMode.HOLD, now=december)).allowed
    await ledger.meter("attempt-1", NOW, NOW + timedelta(minutes=1))  # ... until they stop in November
    await ledger.meter("attempt-2", NOW, NOW + timedelta(minutes=1))
    assert (await ledger.admit(attempt, workspace="acme", pool="p", provider="local", facts=FACTS,
                               limits=[BudgetLimit(pool=None, minutes=2)], mode=BudgetMode.HOLD, now=december)).allowed
