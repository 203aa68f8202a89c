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
from providers.errors import InvalidJobConfiguration


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
            raise _invalid_from_validation(exc) from None


def _invalid_from_validation(exc: ValidationError) -> InvalidJobConfiguration:
    """Name the first bad job variable the way a user wrote it."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "job_variables"
    return InvalidJobConfiguration(field, _printable(field, first.get("input")), first.get("msg", "invalid value"))


def _printable(field: str, value: object) -> object:
    """Scalars are shown as given; env maps, credentials and other structures are not (they may hold secrets)."""
    sensitive = field.split(".")[0] in {"env", "aws_credentials", "credentials", "aci_credentials"}
    if sensitive or not isinstance(value, (str, int, float, bool, type(None))):
        return f"<{type(value).__name__}>"
    return value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
