"""Job configuration for one flow run, with Prefect's own semantics, and the run's known secrets.

Prefect's ``BaseJobConfiguration.resolve_for_flow_run`` is what its workers call:
pool base job template, then deployment ``job_variables``, then flow-run
``job_variables`` (``env`` merged), placeholders, block references (with secrets)
and Prefect variables, then ``prepare_for_flow_run`` (env incl. PREFECT_API_URL,
auth and PREFECT__FLOW_RUN_ID, labels, name, default command). We call exactly
that, under the workspace's settings, so the result equals what a Prefect worker
of that workspace would build.

Prefect does not say which values came from block or variable references, so
:func:`applied_template` repeats its first steps (merge, ``apply_values``) and stops
before resolution: where that template holds a reference, the resolved configuration
holds a secret (:func:`providers.secrets.run_secrets`).
"""

from __future__ import annotations

import copy
from typing import Any

from prefect.client.schemas.objects import FlowRun, WorkPool
from prefect.client.schemas.responses import DeploymentResponse
from prefect.utilities.collections import deep_merge, set_in_dict
from prefect.utilities.templating import apply_values
from prefect.workers.base import BaseJobConfiguration
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from dispatcher.prefect_api import PrefectWorkspace
from providers.errors import invalid_configuration
from providers.secrets import RunSecrets, run_secrets


class ResolvedConfiguration(BaseModel):
    """A run's job configuration and the secret values it carries."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    configuration: SerializeAsAny[BaseJobConfiguration] = Field(description="The provider's resolved job configuration.")
    secrets: RunSecrets = Field(exclude=True, description="Values to mask wherever the run's output is copied.")


async def build_configuration(
    workspace: PrefectWorkspace,
    configuration_class: type[BaseJobConfiguration],
    flow_run: FlowRun,
    work_pool: WorkPool,
) -> ResolvedConfiguration:
    """Resolve the job configuration; malformed job variables raise InvalidJobConfiguration."""
    with workspace.settings():
        deployment = await workspace.client.read_deployment(flow_run.deployment_id) if flow_run.deployment_id else None
        values = job_variables(deployment, flow_run)
        try:
            # A copy: resolve_for_flow_run pops "env" out of flow_run.job_variables, so a
            # second build from the same object (watching after submitting) would lose it.
            configuration = await configuration_class.resolve_for_flow_run(
                flow_run.model_copy(deep=True),
                client=workspace.client,
                work_pool=work_pool,
                worker_name=workspace.worker_name,
                deployment=deployment,
            )
        except ValidationError as exc:
            raise invalid_configuration(exc) from None
    return _resolved(workspace, configuration, applied_template(work_pool.base_job_template, values))


async def build_from_pool_template(
    workspace: PrefectWorkspace,
    configuration_class: type[BaseJobConfiguration],
    flow_run: FlowRun,
    work_pool: WorkPool,
) -> ResolvedConfiguration:
    """The configuration from the pool template and the run's own job variables (its deployment is gone)."""
    values = copy.deepcopy(flow_run.job_variables or {})
    with workspace.settings():
        # client by keyword: Prefect's @inject_client reads it only from the keywords.
        configuration = await configuration_class.from_template_and_values(
            work_pool.base_job_template, copy.deepcopy(values), client=workspace.client
        )
    return _resolved(workspace, configuration, applied_template(work_pool.base_job_template, values))


def job_variables(deployment: DeploymentResponse | None, flow_run: FlowRun) -> dict[str, Any]:
    """Deployment then flow-run job variables, ``env`` merged, as ``resolve_for_flow_run`` merges them."""
    values = copy.deepcopy(getattr(deployment, "job_variables", None) or {})
    flow_run_values = copy.deepcopy(flow_run.job_variables or {})
    if isinstance(values.get("env"), dict):
        values["env"].update(flow_run_values.pop("env", {}))
    values.update(flow_run_values)
    return values


def applied_template(base_job_template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The job configuration template with ``values`` applied, references not yet resolved.

    The same steps as ``BaseJobConfiguration.from_template_and_values`` up to its
    ``apply_values`` (variable defaults, ``env`` merges, dot-delimited keys).
    """
    base_config = copy.deepcopy(base_job_template["job_configuration"])
    variables = BaseJobConfiguration._get_base_config_defaults(base_job_template["variables"].get("properties", {}))
    if variables.get("env"):
        is_dict = isinstance(base_config.get("env"), dict)
        base_config["env"] = base_config["env"] | variables["env"] if is_dict else variables["env"]
    nested: dict[str, Any] = {}
    for key, value in values.items():
        if "." in key:
            set_in_dict(nested, key, value)
    for key, value in values.items():
        if "." not in key:
            both_dicts = isinstance(nested.get(key), dict) and isinstance(value, dict)
            nested[key] = deep_merge(nested[key], value) if both_dicts else value
    variables.update(nested)
    if isinstance(base_config.get("env"), dict) and variables.get("env"):
        base_config["env"] = base_config["env"] | variables["env"]
    return apply_values(template=base_config, values=variables)


def _resolved(workspace: PrefectWorkspace, configuration: BaseJobConfiguration, applied: dict[str, Any]) -> ResolvedConfiguration:
    secrets = run_secrets(configuration, applied, extra=_workspace_secrets(workspace))
    return ResolvedConfiguration(configuration=configuration, secrets=secrets)


def _workspace_secrets(workspace: PrefectWorkspace) -> list[str]:
    """The workspace's API key or auth string, and the password part of a ``user:password`` auth string."""
    config = workspace.config
    found = [secret.get_secret_value() for secret in (config.api_key, config.auth_string) if secret is not None]
    if config.auth_string is not None:
        found.append(config.auth_string.get_secret_value().partition(":")[2])
    return found
