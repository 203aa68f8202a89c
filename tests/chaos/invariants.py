"""What every chaos scenario must end with, checked against Prefect, the cloud and the ledger.

- every run final, in the state the scenario expects (no run stuck: a bounded wait on that condition);
- no run started twice: one piece of infrastructure per flow run at the emulator, started once (one per
  attempt, none retried here): an ECS task, a Cloud Run execution, an ACI container group;
- no run lost: every piece belongs to an attempt in the ledger, and every run has its own;
- each attempt metered exactly once: ``metered_at`` set, minutes and times those of its infrastructure,
  one ``compute.metered`` event queued, and the usage totals equal the sums over the metered rows;
- no infrastructure left running, nothing in flight or unrecorded in the ledger.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from dispatcher.ledger import Ledger
from dispatcher.ledger.tables import OutboxEventRecord, RunRecord
from dispatcher.usage.events import METERED
from tests.chaos.cloud import ChaosCloud, Infra, by_flow_run
from tests.e2e.helpers import is_final, read_runs

Expect = Callable[[list[Infra]], str]


def completed_unless_failed_to_start(infra: list[Infra]) -> str:
    """A run whose infrastructure never started ends Crashed; every other one Completed (the engine completes it)."""
    return "Crashed" if infra and infra[-1].failed_to_start else "Completed"


async def _until(condition: Callable[[], Awaitable[bool]], timeout_s: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"stuck after {timeout_s:.0f}s: {what()}")
        await asyncio.sleep(0.25)


async def settle_and_check(client: PrefectClient, ids: list[UUID], dsn: str, cloud: ChaosCloud, emu: Any,
                           expect: Expect = completed_unless_failed_to_start, timeout_s: float = 150) -> dict:
    """Wait (bounded) until nothing moves any more, then check every invariant; returns a summary."""
    runs: dict = {}

    async def all_final() -> bool:
        runs.update(await read_runs(client, ids))
        return len(runs) == len(ids) and all(is_final(r) for r in runs.values())

    def states() -> str:
        return str(collections.Counter(r.state.name if r.state else None for r in runs.values()))

    await _until(all_final, timeout_s, lambda: f"runs not final: {states()}")
    ledger = await Ledger.open(dsn)
    try:
        open_rows: list = []

        ours = {str(i) for i in ids}

        def ours_at_the_cloud() -> list[Infra]:
            return [i for i in cloud.infrastructure(emu) if i.flow_run_id in ours]

        async def ledger_quiet() -> bool:
            open_rows[:] = [r for r in await ledger.unmetered() + await ledger.unsubmitted() if r.flow_run_id in ours]
            return not open_rows and all(i.ended for i in ours_at_the_cloud())

        def what_open() -> str:
            running = [i.key for i in ours_at_the_cloud() if not i.ended]
            return f"ledger rows open: {[(r.flow_run_id[:8], r.infrastructure_id) for r in open_rows][:5]}, still running: {running[:5]}"

        await _until(ledger_quiet, 150, what_open)
        usage = await ledger.usage()
        everything_metered = not await ledger.unmetered()
    finally:
        await ledger.close()
    all_rows, metered_events = await _ledger_rows(dsn)
    rows = [r for r in all_rows if r.flow_run_id in ours]
    infra_of = {run_id: infra for run_id, infra in by_flow_run(cloud.infrastructure(emu)).items() if run_id in ours}
    problems = _violations(cloud, ids, runs, infra_of, rows, metered_events, expect)
    if everything_metered:  # (a failed earlier scenario may have left runs in flight: then the totals move)
        problems.extend(_usage_problems(usage, all_rows))
    summary = {"states": dict(collections.Counter(r.state.name for r in runs.values())),
               "infrastructure": sum(map(len, infra_of.values())), "attempts": len(rows)}
    assert not problems, f"{len(problems)} invariant violations, summary {summary}:\n" + "\n".join(problems[:20])
    return summary


async def _ledger_rows(dsn: str) -> tuple[list, collections.Counter]:
    engine = create_async_engine(dsn)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(select(RunRecord.__table__))).all()
            events = (await connection.execute(
                select(OutboxEventRecord.body).where(OutboxEventRecord.event == METERED))).scalars().all()
    finally:
        await engine.dispose()
    return rows, collections.Counter(json.loads(body)["payload"]["attempt_id"] for body in events)


def _violations(cloud: ChaosCloud, ids, runs, infra_of, rows, metered_events, expect: Expect) -> list[str]:
    problems: list[str] = []
    ours = {str(i) for i in ids}
    rows_of = collections.defaultdict(list)
    for row in rows:
        rows_of[row.flow_run_id].append(row)
    for run_id in sorted(ours):
        infra, attempts, run = infra_of.get(run_id, []), rows_of.get(run_id, []), runs[UUID(run_id)]
        started = [a for a in attempts if a.infrastructure_id]
        tag = f"run {run_id[:8]} ({run.state.name}: {(run.state.message or '')[:120]!r})"
        starts = sum(i.starts for i in infra)
        if starts != 1:
            problems.append(f"{tag}: started {starts} times at the cloud ({len(infra)} pieces of infrastructure)")
        if len(started) != len(infra):
            problems.append(f"{tag}: {len(started)} submitted attempts in the ledger for {len(infra)} at the cloud (lost)")
        if run.state.name != expect(infra):
            problems.append(f"{tag}: expected {expect(infra)}")
        by_key = {i.key: i for i in infra}
        for attempt in started:
            problems.extend(f"{tag}, attempt {attempt.attempt}: {p}"
                            for p in _metering_problems(attempt, by_key.get(cloud.key_of(attempt.infrastructure_id)),
                                                        metered_events))
    return problems


def _usage_problems(usage, rows) -> list[str]:
    """The usage totals count each metered attempt once: they equal the sums over the metered rows."""
    metered = [r for r in rows if r.metered_at is not None]
    totals = (sum(u.attempts for u in usage), sum(u.billed_minutes for u in usage))
    if totals != (len(metered), sum(r.billed_minutes or 0 for r in metered)):
        return [f"usage totals (attempts, minutes) {totals} differ from the {len(metered)} metered rows"]
    return []


def _metering_problems(attempt, infra: Infra | None, metered_events: collections.Counter) -> list[str]:
    if infra is None:
        return [f"infrastructure {attempt.infrastructure_id} is not this run's"]
    problems = []
    if attempt.metered_at is None:
        return ["not metered"]
    if metered_events[attempt.attempt_id] != 1:
        problems.append(f"{metered_events[attempt.attempt_id]} metered events")
    if infra.billed_from is None or infra.stopped_at is None:
        expected_minutes = 0
    else:
        expected_minutes = math.ceil((infra.stopped_at - infra.billed_from) / 60)
        if attempt.started_at is None or abs(attempt.started_at.timestamp() - infra.billed_from) > 1:
            problems.append(f"metered start {attempt.started_at} is not its infrastructure's ({infra.billed_from})")
    if attempt.billed_minutes != expected_minutes:
        problems.append(f"billed {attempt.billed_minutes} min, its infrastructure ran {expected_minutes}")
    return problems
