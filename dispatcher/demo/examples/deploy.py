"""Deploy the example flows from this folder (used by the demo and the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient

FLOWS_DIR = Path(__file__).resolve().parent


async def deploy_example(
    client: PrefectClient,
    function: str,
    pool: str,
    *,
    name: str | None = None,
    job_variables: dict[str, Any] | None = None,
) -> UUID:
    """A deployment of ``flows.py:<function>`` whose code is pulled from this folder.

    The pull step is what ``prefect flow-run execute`` runs first, the same way a
    deployment built with ``flow.from_source(<local dir>)`` works.
    """
    flow_id = await client.create_flow_from_name(function)
    return await client.create_deployment(
        flow_id=flow_id,
        name=name or f"{function}-example",
        work_pool_name=pool,
        entrypoint=f"flows.py:{function}",
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(FLOWS_DIR)}}],
        job_variables=job_variables or {},
    )
