"""Seed N runs that are already in flight on ECS: the tasks, the ledger rows and Prefect's runs.

For ``bench/inflight.py --seeded``: dispatching 10,000 runs through one Prefect server on 2
cores takes most of an hour (each claim costs that server ~120 ms of CPU), and what that bench
measures is the watching, not the dispatching. So the state a dispatcher would have left is
written directly, through the same code paths a dispatcher uses where it has them:

1. tasks started through ``EcsProvider.submit`` (RunTask on the emulator, idempotency keys as
   the dispatcher makes them);
2. ledger rows through ``Ledger.record_grouped_submission`` with the provider's watch batch;
3. flow runs in Prefect, Running with their task as ``infrastructure_pid``, through Prefect's
   server models (``bench/bulk_runs.py --running``).

A dispatcher started on this finds every run in its first recovery pass and adopts it (its
configuration rebuilt from Prefect, as after a restart); the bench reports how long that took.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from bench.bulk_runs import bulk_create


async def seed_running(cloud, emu, prefect_db: str, ledger_dsn: str, deployment_id, pool: str, runs: int,
                       workdir: Path, run_s: float, concurrency: int = 32) -> None:
    from dispatcher.clock import utcnow
    from dispatcher.ledger import AttemptRef, Ledger
    from dispatcher.loops.retry import call_with_retries
    from dispatcher.loops.shards import watch_key
    from providers.base import RunLimits, RunRef, SubmitRequest
    from providers.ecs import EcsJobConfiguration, EcsProvider, EcsSettings

    if cloud.kind != "ecs":
        raise SystemExit("--seeded is written for ECS (Cloud Run and ACI reach their quotas by dispatching)")
    provider = EcsProvider(EcsSettings(**cloud.provider_settings(emu)))
    configuration = EcsJobConfiguration(**cloud.variables(emu, run_s))
    ledger = await Ledger.open(ledger_dsn)
    slots = asyncio.Semaphore(concurrency)
    seeded: list[tuple[str, str]] = []

    async def one() -> None:
        flow_run_id = uuid.uuid4()  # its attempt id too, as for runs claimed before attempts existed
        request = SubmitRequest(flow_run_id=flow_run_id, attempt_id=flow_run_id, idempotency_key=f"prefect-{flow_run_id.hex}",
                                workspace="bench", pool=pool, configuration=configuration,
                                limits=RunLimits(max_runtime_s=86400))
        async with slots:
            submission = await call_with_retries("ecs", "submit", lambda: provider.submit(request), deadline_s=900)
            ref = RunRef(flow_run_id=flow_run_id, attempt_id=flow_run_id,
                         infrastructure_id=submission.infrastructure_id, configuration=configuration)
            batch = provider.watch_batch(ref)
            assert batch is not None
            await ledger.record_grouped_submission(
                AttemptRef(flow_run_id=str(flow_run_id), attempt_id=str(flow_run_id)), submission.infrastructure_id,
                utcnow(), workspace="bench", pool=pool, provider="ecs", watch_key=watch_key(batch), batch_size=batch.size)
        seeded.append((str(flow_run_id), submission.infrastructure_id))

    try:
        await asyncio.gather(*(one() for _ in range(runs)))
    finally:
        await provider.aclose()
        await ledger.close()
    running = workdir / "running.json"
    running.write_text(json.dumps(seeded))
    bulk_create(prefect_db, deployment_id, runs, workdir, running=running)
