"""Job configuration for one flow run, with Prefect's own semantics.

Prefect's ``BaseJobConfiguration.resolve_for_flow_run`` is what its workers call:
pool base job template, then deployment ``job_variables``, then flow-run
``job_variables`` (``env`` merged), placeholders, block references (with secrets)
and Prefect variables, then ``prepare_for_flow_run`` (env incl. PREFECT_API_URL,
auth and PREFECT__FLOW_RUN_ID, labels, name, default command). We call exactly
that, under the workspace's settings, so the result equals what a Prefect worker
of that workspace would build.
"""

from __future__ import annotations

from prefect.client.schemas.objects import FlowRun, WorkPool
from prefect.workers.base import BaseJobConfiguration
from pydantic import ValidationError

from dispatcher.prefect_api import PrefectWorkspace
from providers.errors import invalid_configuration


async def build_configuration(
    workspace: PrefectWorkspace,
    configuration_class: type[BaseJobConfiguration],
    flow_run: FlowRun,
    work_pool: WorkPool,
) -> BaseJobConfiguration:
    """Resolve the job configuration; malformed job variables raise InvalidJobConfiguration."""
    with workspace.settings():
        try:
            # A copy: resolve_for_flow_run pops "env" out of flow_run.job_variables, so a
            # second build from the same object (watching after submitting) would lose it.
            return await configuration_class.resolve_for_flow_run(
                flow_run.model_copy(deep=True),
                client=workspace.client,
                work_pool=work_pool,
                worker_name=workspace.worker_name,
            )
        except ValidationError as exc:
            raise invalid_configuration(exc) from None
