"""Create many SCHEDULED flow runs of one deployment fast, with Prefect's own server models.

Through the API a Prefect server on 2 cores creates a few runs per second, so a bench of
10,000 runs in flight would spend an hour creating them. This script writes them through
``prefect.server.models`` (the code behind ``POST /deployments/{id}/create_flow_run``:
flow run row, initial Scheduled state, system labels) straight into the server's database,
in batches of one transaction. Run it as its own process with the server's database URL:

    PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://... python bench/bulk_runs.py <deployment id> <n>

With ``--running FILE`` (a JSON list of ``[flow run id, infrastructure id]``) the runs get those ids
and start Running on that infrastructure instead (``bench/seed_running.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

BATCH = 500


async def create(deployment_id: UUID, runs: int, running: list[tuple[str, str]] | None = None) -> None:
    from prefect.server import models, schemas
    from prefect.server.database import provide_database_interface
    from prefect.server.schemas.states import Running, Scheduled

    db = provide_database_interface()
    async with db.session_context() as session:
        deployment = await models.deployments.read_deployment(session=session, deployment_id=deployment_id)
        if deployment is None:
            raise SystemExit(f"deployment {deployment_id} not found")
    created = 0
    while created < runs:
        async with db.session_context(begin_transaction=True) as session:
            for _ in range(min(BATCH, runs - created)):
                seeded = {} if running is None else {"id": UUID(running[created][0]),
                                                      "infrastructure_pid": running[created][1]}
                await models.flow_runs.create_flow_run(session=session, flow_run=schemas.core.FlowRun(
                    flow_id=deployment.flow_id, deployment_id=deployment.id,
                    deployment_version=deployment.version, parameters=dict(deployment.parameters or {}),
                    tags=list(deployment.tags or []), work_queue_name=deployment.work_queue_name,
                    work_queue_id=deployment.work_queue_id, state=Scheduled() if running is None else Running(),
                    **seeded,
                ))
                created += 1


def bulk_create(database_url: str, deployment_id, runs: int, workdir: Path, running: Path | None = None) -> None:
    """bench/bulk_runs.py in its own process, on the server's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(workdir / "bulk-home"), PREFECT_API_DATABASE_CONNECTION_URL=database_url,
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    subprocess.run([sys.executable, str(Path(__file__)), str(deployment_id), str(runs),
                    *(["--running", str(running)] if running else [])], env=env, check=True)


def main() -> None:
    deployment_id, runs = UUID(sys.argv[1]), int(sys.argv[2])
    running = json.loads(Path(sys.argv[4]).read_text()) if sys.argv[3:4] == ["--running"] else None
    began = time.perf_counter()
    asyncio.run(create(deployment_id, runs, running))
    print(f"{runs} flow runs created in {time.perf_counter() - began:.1f}s", flush=True)


if __name__ == "__main__":
    main()
