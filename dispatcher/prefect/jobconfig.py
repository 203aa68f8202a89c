"""Job configuration for one flow run, with Prefect's own semantics.

Prefect's ``BaseJobConfiguration.resolve_for_flow_run`` is what its workers call:
pool base job template, then deployment ``job_variables``, then flow-run
``job_variables`` (``env`` merged), placeholders, block references (with secrets)
and Prefect variables, then ``prepare_for_flow_run`` (env incl. PREFECT_API_URL,
auth and PREFECT__FLOW_RUN_ID, labels, name, default command). We call exactly
that, under the workspace's settings, so the result equals what a Prefect worker
of that workspace would build; with it come the run's secret values
(:mod:`dispatcher.prefect.templating`).

Whatever a run's inputs are, building ends in a configuration or in one of three
errors: ``DeploymentGone``, ``InvalidJobConfiguration`` (naming the field, or the
missing block or variable), or ``PrefectUnavailable`` (try again later).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, WorkPool
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound
from prefect.workers.base import BaseJobConfiguration
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from dispatcher.prefect.api import PrefectUnavailable, PrefectApi
from dispatcher.prefect.references import missing_reference, with_missing_variables
from dispatcher.prefect.templating import applied_template, secrets_of
from providers import registry
from providers.errors import InvalidJobConfiguration, invalid_configuration
from providers.secrets import RunSecrets


class DeploymentGone(Exception):
    """The run's deployment was deleted: the run is cancelled, as Prefect's workers do."""

    def __init__(self, deployment_id: UUID) -> None:
        super().__init__(f"Deployment {deployment_id} no longer exists, cancelled run.")


class ResolvedConfiguration(BaseModel):
    """A run's job configuration and the secret values it carries."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    configuration: SerializeAsAny[BaseJobConfiguration] = Field(description="The provider's resolved job configuration.")
    secrets: RunSecrets = Field(exclude=True, description="Values to mask wherever the run's output is copied.")


async def build_configuration(
    prefect: PrefectApi,
    configuration_class: type[BaseJobConfiguration],
    flow_run: FlowRun,
    work_pool: WorkPool,
) -> ResolvedConfiguration:
    """Resolve the job configuration of ``flow_run``; see the module docstring for the errors."""
    deployment = await _deployment_of(prefect, flow_run)
    values = job_variables(deployment, flow_run)

    async def resolve() -> BaseJobConfiguration:
        # A copy: resolve_for_flow_run pops "env" out of flow_run.job_variables, so a
        # second build from the same object (watching after submitting) would lose it.
        return await configuration_class.resolve_for_flow_run(
            flow_run.model_copy(deep=True), client=prefect.client, work_pool=work_pool,
            worker_name=prefect.worker_name, deployment=deployment,
        )

    configuration = await _built(prefect, configuration_class, resolve, values, work_pool)
    return ResolvedConfiguration(configuration=configuration,
                                 secrets=secrets_of(prefect, configuration, applied_template(work_pool.base_job_template, values)))


async def build_from_pool_template(
    prefect: PrefectApi,
    configuration_class: type[BaseJobConfiguration],
    flow_run: FlowRun,
    work_pool: WorkPool,
    with_run_variables: bool = True,
) -> ResolvedConfiguration:
    """The configuration from the pool template and the run's own job variables (its deployment is
    gone), or from the template alone (the run's variables no longer build)."""
    values = copy.deepcopy(flow_run.job_variables or {}) if with_run_variables else {}
    _check_shapes("flow run", values)

    async def resolve() -> BaseJobConfiguration:
        # client by keyword: Prefect's @inject_client reads it only from the keywords.
        return await configuration_class.from_template_and_values(
            work_pool.base_job_template, copy.deepcopy(values), client=prefect.client
        )

    configuration = await _built(prefect, configuration_class, resolve, values, work_pool)
    return ResolvedConfiguration(configuration=configuration,
                                 secrets=secrets_of(prefect, configuration, applied_template(work_pool.base_job_template, values)))


async def _built(
    prefect: PrefectApi, configuration_class: type[BaseJobConfiguration],
    resolve: Callable[[], Awaitable[BaseJobConfiguration]], values: dict[str, Any], work_pool: WorkPool,
) -> BaseJobConfiguration:
    """Run Prefect's resolution and turn every failure into one of the module's three errors."""
    try:
        with prefect.guard(for_flow_run=True):
            return await resolve()
    except ValidationError as exc:
        # Values of the cloud's secret-bearing job variables are not quoted in the run's state message.
        invalid = invalid_configuration(exc, registry.secret_fields_of_configuration(configuration_class))
        raise await with_missing_variables(prefect, values, invalid) from None
    except (PrefectUnavailable, InvalidJobConfiguration):
        raise
    except ObjectNotFound:
        raise await missing_reference(prefect, values, work_pool) from None
    except Exception as exc:  # Prefect's templating on inputs it did not expect
        raise InvalidJobConfiguration(
            "job_variables", "<mapping>", f"values Prefect can build a job configuration from ({type(exc).__name__})"
        ) from None


async def _deployment_of(prefect: PrefectApi, flow_run: FlowRun) -> DeploymentResponse | None:
    if flow_run.deployment_id is None:
        return None
    deployment = await prefect.read_deployment(flow_run.deployment_id)
    if deployment is None:
        raise DeploymentGone(flow_run.deployment_id)
    return deployment


def job_variables(deployment: DeploymentResponse | None, flow_run: FlowRun) -> dict[str, Any]:
    """Deployment then flow-run job variables, ``env`` merged, as ``resolve_for_flow_run`` merges them,
    with the shapes that merge needs checked first (an ``env`` list would crash it)."""
    values = copy.deepcopy(getattr(deployment, "job_variables", None) or {})
    flow_run_values = copy.deepcopy(flow_run.job_variables or {})
    _check_shapes("deployment", values)
    _check_shapes("flow run", flow_run_values)
    if isinstance(values.get("env"), dict):
        values["env"].update(flow_run_values.pop("env", None) or {})
    values.update(flow_run_values)
    return values


def _check_shapes(where: str, values: dict[str, Any]) -> None:
    env = values.get("env")
    if env is not None and not isinstance(env, dict):
        raise InvalidJobConfiguration(
            "env", f"<{type(env).__name__}>", f"a mapping of variable names to values (set in the {where}'s job variables)"
        )
