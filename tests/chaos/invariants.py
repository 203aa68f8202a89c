"""What every chaos scenario must end with, checked against Prefect, the cloud and the ledger.

- every run final, in the state the scenario expects (no run stuck: a bounded wait on that condition);
- no run started twice: one ECS task per flow run at the emulator (one per attempt, none retried here);
- no run lost: every task belongs to an attempt in the ledger, and every run has its task;
- each attempt metered exactly once: ``metered_at`` set, minutes and times those of its own task,
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
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from dispatcher.ledger import Ledger
from dispatcher.ledger.tables import OutboxEventRecord, RunRecord
from dispatcher.usage.events import METERED
from tests.chaos.cloud import task_arn, tasks_per_flow_run
from tests.e2e.helpers import is_final, read_runs
from tests.emulators.ecs import EcsEmulator, Task

Expect = Callable[[list[Task]], str]


def completed_unless_failed_to_start(tasks: list[Task]) -> str:
    """A run whose task never started ends Crashed; every other one Completed (the engine completes it)."""
    return "Crashed" if tasks and tasks[-1].stop_code == "TaskFailedToStart" else "Completed"


async def _until(condition: Callable[[], Awaitable[bool]], timeout_s: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"stuck after {timeout_s:.0f}s: {what()}")
        await asyncio.sleep(0.25)


async def settle_and_check(client: PrefectClient, ids: list[UUID], dsn: str, emu: EcsEmulator,
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

        def our_tasks() -> list[Task]:
            return [t for t in emu.tasks.values() if t.environment.get("PREFECT__FLOW_RUN_ID") in ours]

        async def ledger_quiet() -> bool:
            open_rows[:] = [r for r in await ledger.unmetered() + await ledger.unsubmitted() if r.flow_run_id in ours]
            return not open_rows and all(t.last_status == "STOPPED" for t in our_tasks())

        def what_open() -> str:
            running = [t.arn for t in our_tasks() if t.last_status != "STOPPED"]
            return f"ledger rows open: {[(r.flow_run_id[:8], r.infrastructure_id) for r in open_rows][:5]}, tasks running: {running[:5]}"

        await _until(ledger_quiet, 60, what_open)
        usage = await ledger.usage()
        everything_metered = not await ledger.unmetered()
    finally:
        await ledger.close()
    all_rows, metered_events = await _ledger_rows(dsn)
    rows = [r for r in all_rows if r.flow_run_id in ours]
    tasks_of = {run_id: tasks for run_id, tasks in tasks_per_flow_run(emu).items() if run_id in ours}
    problems = _violations(ids, runs, tasks_of, rows, metered_events, expect)
    if everything_metered:  # (a failed earlier scenario may have left runs in flight: then the totals move)
        problems.extend(_usage_problems(usage, all_rows))
    summary = {"states": dict(collections.Counter(r.state.name for r in runs.values())),
               "tasks": sum(map(len, tasks_of.values())), "attempts": len(rows)}
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


def _violations(ids, runs, tasks_of, rows, metered_events, expect: Expect) -> list[str]:
    problems: list[str] = []
    ours = {str(i) for i in ids}
    rows_of = collections.defaultdict(list)
    for row in rows:
        rows_of[row.flow_run_id].append(row)
    for run_id in sorted(ours):
        tasks, attempts, run = tasks_of.get(run_id, []), rows_of.get(run_id, []), runs[UUID(run_id)]
        started = [a for a in attempts if a.infrastructure_id]
        tag = f"run {run_id[:8]} ({run.state.name}: {(run.state.message or '')[:120]!r})"
        if len(tasks) != 1:
            problems.append(f"{tag}: {len(tasks)} ECS tasks (started {'twice' if tasks else 'never'})")
        if len(started) != len(tasks):
            problems.append(f"{tag}: {len(started)} submitted attempts in the ledger for {len(tasks)} tasks (lost)")
        if run.state.name != expect(tasks):
            problems.append(f"{tag}: expected {expect(tasks)}")
        by_arn = {t.arn: t for t in tasks}
        for attempt in started:
            problems.extend(f"{tag}, attempt {attempt.attempt}: {p}" for p in _metering_problems(attempt, by_arn, metered_events))
    return problems


def _usage_problems(usage, rows) -> list[str]:
    """The usage totals count each metered attempt once: they equal the sums over the metered rows."""
    metered = [r for r in rows if r.metered_at is not None]
    totals = (sum(u.attempts for u in usage), sum(u.billed_minutes for u in usage))
    if totals != (len(metered), sum(r.billed_minutes or 0 for r in metered)):
        return [f"usage totals (attempts, minutes) {totals} differ from the {len(metered)} metered rows"]
    return []


def _metering_problems(attempt, by_arn: dict[str, Task], metered_events: collections.Counter) -> list[str]:
    task = by_arn.get(task_arn(attempt.infrastructure_id))
    if task is None:
        return [f"infrastructure {attempt.infrastructure_id} is not this run's task"]
    problems = []
    if attempt.metered_at is None:
        return ["not metered"]
    if metered_events[attempt.attempt_id] != 1:
        problems.append(f"{metered_events[attempt.attempt_id]} metered events")
    # Fargate bills from the image pull (a task that failed to start may have pulled): see providers/ecs/mapping.py.
    billed_from = task.pull_started_at or task.started_at
    if billed_from is None:
        expected_minutes = 0
    else:
        expected_minutes = math.ceil((task.stopped_at - billed_from) / 60)
        if attempt.started_at is None or abs(attempt.started_at.timestamp() - billed_from) > 1:
            problems.append(f"metered start {attempt.started_at} is not its task's ({billed_from})")
    if attempt.billed_minutes != expected_minutes:
        problems.append(f"billed {attempt.billed_minutes} min, its task ran {expected_minutes}")
    return problems
