"""A ledger with a known month of usage, and a configuration with tokens, for the usage API, page and CLI tests."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pydantic import SecretStr

from dispatcher.config import DispatcherConfig, PoolConfig, ServiceConfig, WorkspaceConfig
from dispatcher.config.usage import ApiConfig, ApiRole, ApiToken
from dispatcher.ledger import AttemptRef, Ledger
from dispatcher.ledger.models import RunFacts
from dispatcher.web.context import UsageContext

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
READ_TOKEN = "read-token-acme-0123456789"
ADMIN_TOKEN = "admin-token-all-9876543210"
METRICS_TOKEN = "metrics-token-abcdefghijkl"
OTHER_TOKEN = "read-token-beta-0123456789"
PREFECT_KEY = "pnu_" + "S3cr3t" * 6  # must never appear in any answer
#: (pool, deployment, flow, day of November, minutes, vCPU, MiB), metered; plus one attempt in flight.
METERED = [
    ("etl", "d-nightly", "load", 3, 30, 1.0, 2048),
    ("etl", "d-nightly", "load", 3, 12, 1.0, 2048),
    ("etl", "d-hourly", "sync", 11, 45, 2.0, 4096),
    ("ml", "d-train", "train", 11, 90, 4.0, 16384),
    ("ml", None, None, 19, 8, None, None),  # a row from before 0003: unknown, unpriced
]
IN_FLIGHT_MINUTES = 5  # submitted 4 min 30 s before NOW
USED_MINUTES = sum(row[4] for row in METERED) + IN_FLIGHT_MINUTES
BUDGET_MINUTES = 180


def usage_config(tmp_path: Path, port: int = 0) -> DispatcherConfig:
    admin_hash = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    return DispatcherConfig(
        workspaces=[
            WorkspaceConfig(name="acme", api_url="http://prefect.internal:4200/api", api_key=SecretStr(PREFECT_KEY),
                            monthly_compute_minutes=BUDGET_MINUTES,
                            pools=[PoolConfig(name="etl"), PoolConfig(name="ml", monthly_compute_minutes=120)]),
            WorkspaceConfig(name="beta", api_url="https://api.prefect.cloud/api/accounts/a1/workspaces/w1",
                            pools=[PoolConfig(name="p")]),
        ],
        ledger_dsn=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        api=ApiConfig(
            tokens=[ApiToken(name="acme-readers", token=SecretStr(READ_TOKEN), workspaces=["acme"]),
                    ApiToken(name="beta-readers", token=SecretStr(OTHER_TOKEN), workspaces=["beta"]),
                    ApiToken(name="platform", sha256=admin_hash, workspaces=["*"], role=ApiRole.ADMIN)],
            metrics_token=SecretStr(METRICS_TOKEN),
        ),
        service=ServiceConfig(port=port),
    )


async def seed(ledger: Ledger) -> None:
    for i, (pool, deployment, flow, day, minutes, vcpu, mib) in enumerate(METERED):
        attempt = AttemptRef(flow_run_id=f"00000000-0000-4000-8000-{i:012d}", attempt_id=f"attempt-{i}")
        stop = datetime(2026, 11, day, 10, 0, tzinfo=timezone.utc)
        await ledger.record_claim(attempt, "acme", pool, "ecs", stop - timedelta(minutes=minutes))
        if deployment is not None:
            facts = RunFacts(deployment_id=deployment, deployment_name=deployment.removeprefix("d-"), flow_name=flow,
                             flow_run_name=f"run-{i}", vcpu=vcpu, memory_mib=mib)
            await ledger.admit(attempt, workspace="acme", pool=pool, provider="ecs", facts=facts, limits=[],
                               mode="reject", now=stop - timedelta(minutes=minutes))
        await ledger.record_submission(attempt, f"arn:task/{i}", stop - timedelta(minutes=minutes), workspace="acme",
                                       pool=pool, provider="ecs")
        await ledger.meter(attempt.attempt_id, stop - timedelta(minutes=minutes), stop)
        await ledger.set_final_state(attempt.attempt_id, "Completed")
    flying = AttemptRef(flow_run_id="00000000-0000-4000-8000-000000000099", attempt_id="attempt-99")
    since = NOW - timedelta(minutes=4, seconds=30)
    await ledger.record_claim(flying, "acme", "etl", "ecs", since)
    await ledger.admit(flying, workspace="acme", pool="etl", provider="ecs", limits=[], mode="reject", now=since,
                       facts=RunFacts(deployment_id="d-hourly", deployment_name="hourly", flow_name="sync",
                                      flow_run_name="running-one", vcpu=2.0, memory_mib=4096))
    await ledger.record_submission(flying, "arn:task/99", since, workspace="acme", pool="etl", provider="ecs")


@asynccontextmanager
async def seeded_context(tmp_path: Path) -> AsyncIterator[UsageContext]:
    config = usage_config(tmp_path)
    ledger = await Ledger.open(config.ledger_dsn)
    try:
        await seed(ledger)
        yield UsageContext(config, ledger, clock=lambda: NOW)
    finally:
        await ledger.close()
