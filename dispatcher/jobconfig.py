"""Job configuration for one flow run, with Prefect's own semantics.

Prefect's ``BaseJobConfiguration.resolve_for_flow_run`` is what its workers call:
pool base job template, then deployment ``job_variables``, then flow-run
``job_variables`` (``env`` merged), placeholders, block references (with secrets)
and Prefect variables, then ``prepare_for_flow_run`` (env incl. PREFECT_API_URL,
auth and PREFECT__FLOW_RUN_ID, labels, name, default command). We call exactly
that, under the workspace's settings, so the result equals what a Prefect worker
of that workspace would build.

Whatever a run's inputs are, building ends in a configuration or in one of three
errors: ``DeploymentGone``, ``InvalidJobConfiguration`` (naming the field, or the
missing block or variable), or ``PrefectUnavailable`` (try again later).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, WorkPool
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound
from prefect.utilities.templating import PlaceholderType, find_placeholders
from prefect.workers.base import BaseJobConfiguration
from pydantic import ValidationError

from dispatcher.prefect_api import PrefectUnavailable, PrefectWorkspace
from providers.errors import InvalidJobConfiguration, invalid_configuration

_BLOCK_PREFIX = "prefect.blocks."
_VARIABLE_PREFIX = "prefect.variables."


class DeploymentGone(Exception):
    """The run's deployment was deleted: the run is cancelled, as Prefect's workers do."""

    def __init__(self, deployment_id: UUID) -> None:
        super().__init__(f"Deployment {deployment_id} no longer exists, cancelled run.")


class MissingReference(InvalidJobConfiguration):
    """A job variable refers to a block or a Prefect variable that does not exist."""

    def __init__(self, field: str, what: str) -> None:
        super().__init__(field, "<reference>", what)
        self.message = f"job variable {field} refers to {what}, which does not exist"


async def build_configuration(
    workspace: PrefectWorkspace,
    configuration_class: type[BaseJobConfiguration],
    flow_run: FlowRun,
    work_pool: WorkPool,
) -> BaseJobConfiguration:
    """Resolve the job configuration of ``flow_run``; see the module docstring for the errors."""
    deployment = await _deployment_of(workspace, flow_run)
    variables = merged_job_variables(deployment, flow_run)
    try:
        with workspace.guard(for_flow_run=True):
            # A copy: resolve_for_flow_run pops "env" out of flow_run.job_variables, so a
            # second build from the same object (watching after submitting) would lose it.
            return await configuration_class.resolve_for_flow_run(
                flow_run.model_copy(deep=True), client=workspace.client, work_pool=work_pool,
                worker_name=workspace.worker_name, deployment=deployment,
            )
    except ValidationError as exc:
        raise await _with_missing_variables(workspace, variables, invalid_configuration(exc)) from None
    except (PrefectUnavailable, InvalidJobConfiguration):
        raise
    except ObjectNotFound:
        raise await _missing_reference(workspace, variables, work_pool) from None
    except Exception as exc:  # Prefect's templating on inputs it did not expect (env as a list...)
        raise InvalidJobConfiguration(
            "job_variables", "<mapping>", f"values Prefect can build a job configuration from ({type(exc).__name__})"
        ) from None


async def _deployment_of(workspace: PrefectWorkspace, flow_run: FlowRun) -> DeploymentResponse | None:
    if flow_run.deployment_id is None:
        return None
    deployment = await workspace.read_deployment(flow_run.deployment_id)
    if deployment is None:
        raise DeploymentGone(flow_run.deployment_id)
    return deployment


def merged_job_variables(deployment: DeploymentResponse | None, flow_run: FlowRun) -> dict[str, Any]:
    """Deployment then flow-run job variables, with the shapes Prefect's merge needs checked first."""
    layers = [("deployment", getattr(deployment, "job_variables", None) or {}), ("flow run", flow_run.job_variables or {})]
    merged: dict[str, Any] = {}
    for where, layer in layers:
        env = layer.get("env")
        if env is not None and not isinstance(env, dict):
            raise InvalidJobConfiguration(
                "env", f"<{type(env).__name__}>", f"a mapping of variable names to values (set in the {where}'s job variables)"
            )
        merged.update(layer)
    return merged


async def _missing_reference(workspace: PrefectWorkspace, variables: dict[str, Any], work_pool: WorkPool) -> InvalidJobConfiguration:
    """Name the block or variable that a failed build referred to."""
    template = work_pool.base_job_template or {}
    sources = (variables, template.get("job_configuration", {}), template.get("variables", {}).get("properties", {}))
    for source in sources:
        for field, kind, name in references(source):
            # A missing Prefect variable does not fail a build: Prefect replaces it with "".
            if kind != "variable" and not await _reference_exists(workspace, kind, name):
                return MissingReference(field, _describe_reference(kind, name))
    return InvalidJobConfiguration("job_variables", "<reference>", "references to blocks and variables that exist")


async def _with_missing_variables(
    workspace: PrefectWorkspace, variables: dict[str, Any], error: InvalidJobConfiguration
) -> InvalidJobConfiguration:
    """Add to a validation error the Prefect variables that do not exist (Prefect made them "")."""
    missing = [f"{field} refers to Prefect variable {name!r}, which does not exist"
               for field, kind, name in references(variables)
               if kind == "variable" and not await _reference_exists(workspace, kind, name)]
    if missing:
        error.message += " (job variable " + "; ".join(missing) + ", so Prefect replaced it with an empty string)"
    return error


def references(node: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(field path, 'block' | 'block_id' | 'variable', name) of every reference in a template (pure)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, dict) and "block_document_id" in ref:
            yield path or "job_variables", "block_id", str(ref["block_document_id"])
            return
        for key, value in node.items():
            yield from references(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from references(item, f"{path}[{index}]")
    elif isinstance(node, str):
        for placeholder in find_placeholders(node):
            if placeholder.type is PlaceholderType.BLOCK_DOCUMENT:
                yield path, "block", placeholder.name[len(_BLOCK_PREFIX):]
            elif placeholder.type is PlaceholderType.VARIABLE:
                yield path, "variable", placeholder.name[len(_VARIABLE_PREFIX):]


async def _reference_exists(workspace: PrefectWorkspace, kind: str, name: str) -> bool:
    client = workspace.client
    with workspace.guard():
        try:
            if kind == "variable":
                return await client.read_variable_by_name(name) is not None
            if kind == "block_id":
                await client.read_block_document(UUID(name))
                return True
            slug, _, rest = name.partition(".")
            await client.read_block_document_by_name(rest.split(".")[0], slug)
            return True
        except (ObjectNotFound, ValueError):
            return False


def _describe_reference(kind: str, name: str) -> str:
    if kind == "variable":
        return f"Prefect variable {name!r}"
    if kind == "block_id":
        return f"block document {name}"
    slug, _, rest = name.partition(".")
    return f"block {slug}/{rest.split('.')[0]}"
