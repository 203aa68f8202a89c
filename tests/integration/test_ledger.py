"""Ledger behaviour on SQLite (temp file) and PostgreSQL (throwaway database).

PostgreSQL tests skip when the server is unreachable. Point them elsewhere
with LEDGER_TEST_POSTGRES=postgresql://user@host:port (any database there is
only used to CREATE/DROP a per-session test database).
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dispatcher.ledger import AttemptRef, Ledger, LedgerError, UsageRow
from tests.integration.conftest import OpenLedger
from tests.integration.conftest import alembic_versions as _alembic_versions
from tests.integration.conftest import run_sql as _run_sql

pytestmark = pytest.mark.asyncio

REPO_ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc
T0 = datetime(2026, 1, 31, 23, 50, tzinfo=UTC)



def A(run: str) -> AttemptRef:  # noqa: N802 - reads like the row it names
    """The run's first attempt, with the attempt id a pre-attempts ledger gives it (the flow run id)."""
    return AttemptRef(flow_run_id=run, attempt_id=run)


async def _submitted(ledger: Ledger, run: str, workspace: str = "acme") -> None:
    await ledger.record_claim(A(run), workspace, "pool-a", "ecs", T0)
    await ledger.record_submission(A(run), f"arn:{run}", T0, workspace=workspace, pool="pool-a", provider="ecs")


async def test_open_twice_is_idempotent(dsn: str, open_ledger: OpenLedger) -> None:
    first = await open_ledger()
    await first.record_claim(A("run-1"), "acme", "pool-a", "ecs", T0)
    await first.close()
    second = await open_ledger()
    assert await _alembic_versions(dsn) == ["0005"]
    assert (await second.get("run-1")) is not None


async def test_concurrent_open_in_one_process(dsn: str, open_ledger: OpenLedger) -> None:
    ledgers = await asyncio.gather(open_ledger(), open_ledger())
    assert await _alembic_versions(dsn) == ["0005"]
    assert await ledgers[0].record_claim(A("run-1"), "acme", "pool-a", "ecs", T0)
    assert not await ledgers[1].record_claim(A("run-1"), "acme", "pool-a", "ecs", T0)


CHILD = """
import asyncio, sys
from dispatcher.ledger import Ledger
async def main():
    print("ready", flush=True)
    sys.stdin.readline()
    await (await Ledger.open(sys.argv[1])).close()
asyncio.run(main())
"""


async def test_concurrent_open_from_several_processes(dsn: str) -> None:
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, dsn, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    for child in children:  # all imported: now release them at the same instant
        assert await asyncio.wait_for(child.stdout.readline(), 60) == b"ready\n"
    for child in children:
        child.stdin.write(b"go\n")
    outcomes = await asyncio.gather(*(child.communicate() for child in children))
    for child, (_out, err) in zip(children, outcomes):
        assert child.returncode == 0, err.decode()
    assert await _alembic_versions(dsn) == ["0005"]


async def test_claim_inserts_only_if_absent(open_ledger: OpenLedger) -> None:
    ledger = await open_ledger()
    assert await ledger.record_claim(A("run-1"), "acme", "pool-a", "ecs", T0)
    assert not await ledger.record_claim(A("run-1"), "other", "pool-b", "aci", T0 + timedelta(hours=1))
    run = await ledger.get("run-1")
    assert (run.workspace, run.pool, run.provider, run.claimed_at) == ("acme", "pool-a", "ecs", T0)
    assert run.infrastructure_id is None and run.metered_at is None
    assert await ledger.get("missing") is None


async def test_first_submission_wins(open_ledger: OpenLedger) -> None:
    ledger = await open_ledger()
    await ledger.record_claim(A("run-1"), "acme", "pool-a", "ecs", T0)
    later = T0 + timedelta(minutes=5)
    kept = await ledger.record_submission(A("run-1"), "arn:1", T0, workspace="acme", pool="pool-a", provider="ecs")
    again = await ledger.record_submission(A("run-1"), "arn:2", later, workspace="x", pool="y", provider="aci")
    assert kept == again == "arn:1"
    run = await ledger.get("run-1")
    assert (run.infrastructure_id, run.submitted_at, run.workspace, run.provider) == ("arn:1", T0, "acme", "ecs")


async def test_submission_creates_missing_claim_row(open_ledger: OpenLedger) -> None:
    ledger = await open_ledger()
    assert await ledger.record_submission(A("run-9"), "task/9", T0, workspace="acme", pool="p", provider="cloud-run") == "task/9"
    run = await ledger.get("run-9")
    assert (run.workspace, run.pool, run.provider, run.claimed_at, run.submitted_at) == ("acme", "p", "cloud-run", T0, T0)
    assert not await ledger.record_claim(A("run-9"), "acme", "p", "cloud-run", T0)


async def test_meter_is_exactly_once_across_two_ledgers(open_ledger: OpenLedger) -> None:
    ledgers = await asyncio.gather(open_ledger(), open_ledger())
    await _submitted(ledgers[0], "run-1")
    stops = [T0 + timedelta(minutes=17, seconds=i) for i in range(20)]
    results = await asyncio.gather(
        *(ledgers[i % 2].meter("run-1", T0, stops[i], exit_code=i) for i in range(20))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    run = await ledgers[1].get("run-1")
    # Every field comes from the single winning call, none from the losers.
    assert run.exit_code == winner and run.stopped_at == stops[winner]
    assert run.billed_minutes == (17 if winner == 0 else 18)
    assert run.compute_seconds == pytest.approx(1020 + winner)
    assert run.usage_month == "2026-02"  # crossed midnight at month end
    assert not await ledgers[0].meter("run-1", T0, T0 + timedelta(hours=3))
    assert (await ledgers[0].get("run-1")).billed_minutes == run.billed_minutes


async def test_meter_survives_restart_without_double_count(open_ledger: OpenLedger) -> None:
    ledger = await open_ledger()
    await _submitted(ledger, "run-1")
    assert await ledger.meter("run-1", T0, T0 + timedelta(seconds=61), reason="Completed")
    await ledger.close()
    restarted = await open_ledger()
    assert not await restarted.meter("run-1", T0, T0 + timedelta(seconds=61))
    assert await restarted.month_minutes("acme", "2026-01") == 2


async def test_meter_without_start_bills_zero(open_ledger: OpenLedger) -> None:
    ledger = await open_ledger()
    await _submitted(ledger, "run-1")
    assert await ledger.meter("run-1", None, T0 + timedelta(minutes=3), reason="never started")
    run = await ledger.get("run-1")
    assert (run.billed_minutes, run.compute_seconds, run.started_at) == (0, 0.0, None)
    assert run.metered_at is not None and run.reason == "never started"
    assert await ledger.unmetered() == []
    await _submitted(ledger, "run-2")  # no teardown time known either
    assert await ledger.meter("run-2", None, None)
    assert (await ledger.get("run-2")).billed_minutes == 0


async def test_errors_and_final_state(open_ledger: OpenLedger) -> None:
    ledger = await open_ledger()
    with pytest.raises(LedgerError):
        await ledger.meter("missing", T0, T0 + timedelta(minutes=1))
    await _submitted(ledger, "run-1")
    with pytest.raises(ValueError):
        await ledger.meter("run-1", T0, T0 - timedelta(seconds=1))
    with pytest.raises(ValueError):
        await ledger.meter("run-1", T0.replace(tzinfo=None), T0.replace(tzinfo=None))
    with pytest.raises(ValueError):
        await ledger.meter("run-1", T0, None)
    assert (await ledger.get("run-1")).metered_at is None
    with pytest.raises(ValueError):
        await ledger.record_claim(A("run-2"), "acme", "p", "ecs", datetime(2026, 1, 1))
    with pytest.raises(LedgerError):
        await ledger.set_final_state("missing", "Failed")
    await ledger.set_final_state("run-1", "Crashed")
    assert (await ledger.get("run-1")).final_state == "Crashed"


async def test_unmetered_is_the_in_flight_set(open_ledger: OpenLedger) -> None:
    ledger = await open_ledger()
    await ledger.record_claim(A("claimed-only"), "acme", "p", "ecs", T0)
    await _submitted(ledger, "in-flight-acme", "acme")
    await _submitted(ledger, "in-flight-beta", "beta")
    await _submitted(ledger, "done", "acme")
    await ledger.meter("done", T0, T0 + timedelta(minutes=1))
    assert [run.flow_run_id for run in await ledger.unmetered()] == ["in-flight-acme", "in-flight-beta"]
    assert [run.flow_run_id for run in await ledger.unmetered("beta")] == ["in-flight-beta"]


async def test_unsubmitted_are_claims_without_submission_or_final_state(open_ledger: OpenLedger) -> None:
    ledger = await open_ledger()
    await ledger.record_claim(A("claimed-only"), "acme", "p", "ecs", T0)
    await ledger.record_claim(A("rejected"), "acme", "p", "ecs", T0)
    await ledger.set_final_state("rejected", "LimitExceeded")
    await ledger.record_claim(A("claimed-beta"), "beta", "p", "ecs", T0)
    await _submitted(ledger, "submitted", "acme")
    # Same claim time: ordered by flow run id.
    assert [run.flow_run_id for run in await ledger.unsubmitted()] == ["claimed-beta", "claimed-only"]
    assert [run.flow_run_id for run in await ledger.unsubmitted("acme")] == ["claimed-only"]


async def test_usage_groups_by_workspace_and_month(open_ledger: OpenLedger) -> None:
    ledger = await open_ledger()
    jan, feb = datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 2, 15, tzinfo=UTC)
    metered = [("a1", "acme", jan, 90), ("a2", "acme", jan, 30), ("a3", "acme", feb, 600), ("b1", "beta", feb, 1)]
    for run, workspace, start, seconds in metered:
        await _submitted(ledger, run, workspace)
        await ledger.meter(run, start, start + timedelta(seconds=seconds))
    await _submitted(ledger, "in-flight", "acme")
    assert await ledger.usage() == [
        UsageRow(workspace="acme", month="2026-01", flow_runs=2, attempts=2, billed_minutes=3, compute_seconds=120.0),
        UsageRow(workspace="acme", month="2026-02", flow_runs=1, attempts=1, billed_minutes=10, compute_seconds=600.0),
        UsageRow(workspace="beta", month="2026-02", flow_runs=1, attempts=1, billed_minutes=1, compute_seconds=1.0),
    ]
    assert [row.workspace for row in await ledger.usage(month="2026-02")] == ["acme", "beta"]
    assert [row.month for row in await ledger.usage(workspace="acme")] == ["2026-01", "2026-02"]
    assert await ledger.month_minutes("acme", "2026-01") == 3
    assert await ledger.month_minutes("acme", "2026-03") == 0
    with pytest.raises(ValueError):
        await ledger.usage(month="2026-1")


async def test_datetimes_come_back_aware_utc(open_ledger: OpenLedger) -> None:
    ledger = await open_ledger()
    india = timezone(timedelta(hours=5, minutes=30))
    await ledger.record_claim(A("run-1"), "acme", "p", "ecs", datetime(2026, 3, 1, 4, 0, tzinfo=india))
    run = await ledger.get("run-1")
    assert run.claimed_at == datetime(2026, 2, 28, 22, 30, tzinfo=UTC)
    assert run.claimed_at.utcoffset() == timedelta(0) and run.updated_at.utcoffset() == timedelta(0)


async def test_sqlite_stores_utc_wall_clock(tmp_path: Path) -> None:
    dsn = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    started = datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    async with await Ledger.open(dsn) as ledger:
        await _submitted(ledger, "run-1")
        await ledger.meter("run-1", started, started + timedelta(minutes=1))
        run = await ledger.get("run-1")
    assert run.started_at == started and run.started_at.tzinfo == UTC and run.usage_month == "2026-02"
    [(stored,)] = await _run_sql(dsn, "SELECT started_at FROM runs")
    assert stored.startswith("2026-02-28 22:30:00")  # UTC wall clock, no offset
    assert await _run_sql(dsn, "PRAGMA journal_mode") == [("wal",)]
