"""Attempts in the ledger: a retried run has a row per attempt, and ledgers from before attempts migrate.

Runs on SQLite and, when it is reachable, PostgreSQL (the same ``dsn`` fixture as test_ledger.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dispatcher.ledger import AttemptRef, Ledger
from tests.integration.conftest import alembic_versions, migrate_to, run_sql

pytestmark = pytest.mark.asyncio
T0 = datetime(2026, 10, 31, 23, 0, tzinfo=timezone.utc)


async def test_a_retried_run_has_one_row_per_attempt_numbered_in_claim_order(open_ledger) -> None:
    ledger = await open_ledger()
    for n, attempt_id in enumerate(["a-1", "a-2", "a-3"], start=1):
        attempt = AttemptRef(flow_run_id="run-1", attempt_id=attempt_id)
        assert await ledger.record_claim(attempt, "acme", "p", "local", T0 + timedelta(minutes=n))
        await ledger.record_submission(attempt, f"host:{n}", T0 + timedelta(minutes=n), workspace="acme", pool="p", provider="local")
        assert await ledger.meter(attempt_id, T0, T0 + timedelta(minutes=n, seconds=1))
    attempts = await ledger.attempts("run-1")
    assert [(a.attempt, a.attempt_id, a.infrastructure_id) for a in attempts] == [
        (1, "a-1", "host:1"), (2, "a-2", "host:2"), (3, "a-3", "host:3")]
    assert (await ledger.last_attempt("run-1")).attempt_id == "a-3"
    [usage] = await ledger.usage()
    assert (usage.flow_runs, usage.attempts, usage.billed_minutes) == (1, 3, 2 + 3 + 4)
    assert not await ledger.meter("a-2", T0, T0 + timedelta(hours=1))  # each attempt is metered once


async def test_a_ledger_from_before_attempts_migrates_with_nothing_lost(dsn: str) -> None:
    """Rows become attempt 1 with attempt_id = flow_run_id: the keys their infrastructure was started
    with, so a run in flight during the upgrade is still found, watched and metered once."""
    await migrate_to(dsn, "0001")
    columns = "(flow_run_id, workspace, pool, provider, infrastructure_id, claimed_at, submitted_at, started_at, " \
              "stopped_at, compute_seconds, billed_minutes, usage_month, metered_at, final_state, updated_at)"
    t = "'2026-10-31 23:00:00+00:00'"
    await run_sql(dsn, f"INSERT INTO runs {columns} VALUES "
                        f"('in-flight', 'acme', 'p', 'ecs', 'arn:1', {t}, {t}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {t}),"
                        f"('metered', 'acme', 'p', 'ecs', 'arn:2', {t}, {t}, {t}, {t}, 90.0, 2, '2026-10', {t}, 'Completed', {t}),"
                        f"('claimed', 'beta', 'p', 'ecs', NULL, {t}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {t})")
    ledger = await Ledger.open(dsn)
    try:
        assert await alembic_versions(dsn) == ["0005"]
        rows = {run: await ledger.get(run) for run in ("in-flight", "metered", "claimed")}
        assert all(row.attempt_id == row.flow_run_id == run and row.attempt == 1 for run, row in rows.items())
        assert rows["metered"].billed_minutes == 2 and rows["metered"].final_state == "Completed"
        assert [r.attempt_id for r in await ledger.unmetered()] == ["in-flight"]
        assert [r.attempt_id for r in await ledger.unsubmitted()] == ["claimed"]
        assert await ledger.meter("in-flight", T0, T0 + timedelta(minutes=5))
        assert not await ledger.meter("in-flight", T0, T0 + timedelta(minutes=5))
        retry = AttemptRef(flow_run_id="metered", attempt_id="new-claim")
        await ledger.record_claim(retry, "acme", "p", "ecs", T0 + timedelta(hours=1))
        assert [a.attempt for a in await ledger.attempts("metered")] == [1, 2]
    finally:
        await ledger.close()
