"""``Microsoft.Resources/deployments`` in a resource group: what Prefect's ACI worker creates per run.

A deployment PUT carries an inline template. ARM validates the template
(expressions, parameters: 400 ``InvalidTemplate``), answers 201 ``Accepted``
with an ``Azure-AsyncOperation``, and deploys each resource as its resource
provider's PUT. Here the resources must be container groups; each is put
through the same backend as a direct PUT (same model walk, ACI rules, quotas,
faults), with the RBAC action ``containerGroups/write`` recorded for the
deploying principal. The deployment is Running until every group it put is
provisioned, then Succeeded, or Failed with ``DeploymentFailed`` and the
group's error in ``details`` (a group the RP refused fails it at once).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from azure.mgmt.containerinstance import models as aci_models
from azure.mgmt.resource.resources.v2025_04_01 import models as resource_models

from ..kit import CallLog
from . import errors
from .backend import Backend
from .groups import GROUP_TYPE, ContainerGroup, iso
from .handlers import Answer, Call, Handler
from .routes import ACI_API_VERSIONS, linked_access_permissions
from .template import Scope, bind_parameters, evaluate, invalid_template
from .validation import parse_issues, raise_remaining

DEPLOYMENT_TYPE = "Microsoft.Resources/deployments"
TEMPLATE_ONLY_KEYS = ("type", "apiVersion", "name", "dependsOn", "condition", "comments", "copy", "scope")


@dataclass
class Deployment:
    name: str
    resource_group: str
    body: dict[str, Any]
    parameters: dict[str, Any]
    started: float
    groups: list[ContainerGroup] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    """Resource errors the RP answered at once (the deployment is Failed with them)."""
    operation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    ended: float | None = None

    @property
    def state(self) -> str:
        if self.refused or any(g.provisioning_state == "Failed" for g in self.groups):
            return "Failed"
        if all(g.provisioning_state == "Succeeded" or g.state == "Stopped" for g in self.groups):
            return "Succeeded"
        return "Running"

    def error(self) -> dict[str, Any] | None:
        details = list(self.refused) + [
            {"code": "InaccessibleImage", "message": f"The container group '{g.name}' failed to deploy: its image "
                                                     "could not be pulled."}
            for g in self.groups if g.provisioning_state == "Failed"]
        if not details:
            return None
        return {"code": "DeploymentFailed", "message": "At least one resource deployment operation failed. Please "
                "list deployment operations for details. Please see https://aka.ms/arm-debug for usage details.",
                "details": details}


class Deployments:
    def __init__(self, backend: Backend, calls: CallLog):
        self.backend, self.calls = backend, calls
        self.by_key: dict[tuple[str, str], Deployment] = {}
        backend.deployments = self

    def put(self, resource_group: str, name: str, body: Any) -> tuple[int, Deployment]:
        rg_name, location = self.backend.resource_group(resource_group)
        if not isinstance(body, dict):
            raise errors.invalid_request_content("The request body must be a JSON object")
        raise_remaining(parse_issues(resource_models.Deployment, body))
        props = body["properties"]
        if props.get("mode") not in ("Incremental", "Complete"):
            raise errors.invalid_request_content(f"Error converting value \"{props.get('mode')}\" to type "
                                                 "'DeploymentMode'. Path 'properties.mode'")
        template = props.get("template")
        if not isinstance(template, dict):
            raise invalid_template("The emulator deploys inline templates only ('properties.template')")
        deployment = Deployment(name, rg_name, body, {}, time.time())
        resources = self._evaluate(template, props.get("parameters") or {}, deployment, rg_name, location)
        for resource in resources:
            self._deploy_group(deployment, rg_name, resource)
        key = (rg_name.lower(), name.lower())
        status = 200 if key in self.by_key else 201
        self.by_key[key] = deployment
        return status, deployment

    def _evaluate(self, template: dict[str, Any], given: dict[str, Any], deployment: Deployment, rg_name: str,
                  location: str) -> list[dict[str, Any]]:
        sub = self.backend.subscription
        scope = Scope({}, {"id": f"/subscriptions/{sub}/resourceGroups/{rg_name}", "name": rg_name,
                           "location": location, "type": "Microsoft.Resources/resourceGroups"},
                      {"id": f"/subscriptions/{sub}", "subscriptionId": sub}, {"name": deployment.name})
        bind_parameters(template, given, scope)
        deployment.parameters = {k: {"type": _json_type(v), "value": v} for k, v in scope.parameters.items()}
        resources = [evaluate(r, scope) for r in template.get("resources") or []]
        for resource in resources:
            if str(resource.get("type", "")).lower() != GROUP_TYPE.lower():
                raise invalid_template(f"The emulator deploys only '{GROUP_TYPE}' resources, not "
                                       f"'{resource.get('type')}'")
            if resource.get("apiVersion") not in ACI_API_VERSIONS:
                raise invalid_template(f"The api-version '{resource.get('apiVersion')}' of resource type "
                                       f"'{GROUP_TYPE}' is not supported")
        return resources

    def _deploy_group(self, deployment: Deployment, rg_name: str, resource: dict[str, Any]) -> None:
        """ARM's PUT to the resource provider, on the caller's behalf."""
        name = str(resource.get("name"))
        body = {k: v for k, v in resource.items() if k not in TEMPLATE_ONLY_KEYS}
        self.calls.record_permission("Microsoft.ContainerInstance/containerGroups/write",
                                     *linked_access_permissions(body))
        try:
            issues = parse_issues(aci_models.ContainerGroup, body)
            _, group, _ = self.backend.put(rg_name, name, body, issues)
        except errors.ArmError as exc:
            deployment.refused.append({"code": exc.code, "message": exc.message})
            return
        deployment.groups.append(group)

    def get(self, resource_group: str, name: str) -> Deployment:
        self.backend.resource_group(resource_group)
        found = self.by_key.get((resource_group.lower(), name.lower()))
        if found is None:
            raise errors.ArmError(404, "DeploymentNotFound",
                                  f"Deployment '{name}' could not be found.")
        return found

    def to_api(self, deployment: Deployment, provisioning_state: str | None = None) -> dict[str, Any]:
        state = provisioning_state or deployment.state
        if state != "Running" and deployment.ended is None and provisioning_state is None:
            deployment.ended = time.time()
        end = deployment.ended or time.time()
        props: dict[str, Any] = {
            "provisioningState": state, "correlationId": deployment.correlation_id,
            "timestamp": iso(end), "duration": _duration(end - deployment.started),
            "mode": deployment.body["properties"]["mode"], "parameters": deployment.parameters,
            "templateHash": _template_hash(deployment.body["properties"]["template"]),
            "outputResources": [{"id": g.id} for g in deployment.groups],
            "providers": [{"namespace": "Microsoft.ContainerInstance",
                           "resourceTypes": [{"resourceType": "containerGroups"}]}],
        }
        if state == "Failed":
            props["error"] = deployment.error()
        sub = self.backend.subscription
        return {"id": f"/subscriptions/{sub}/resourceGroups/{deployment.resource_group}/providers/"
                      f"{DEPLOYMENT_TYPE}/{deployment.name}", "name": deployment.name, "type": DEPLOYMENT_TYPE,
                "properties": props}


def _json_type(value: Any) -> str:
    return {bool: "Bool", int: "Int", float: "Int", str: "String", list: "Array", dict: "Object"}.get(
        type(value), "String")


def _duration(seconds: float) -> str:
    return "PT" + f"{max(seconds, 0):.7f}".rstrip("0").rstrip(".") + "S"


def _template_hash(template: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return str(int.from_bytes(digest[:8], "big"))


# -- handlers ----------------------------------------------------------------------------------------


def _deployments(backend: Backend) -> Deployments:
    return backend.deployments


def create_or_update(backend: Backend, call: Call) -> Answer:
    deployments = _deployments(backend)
    status, deployment = deployments.put(call.params["rg"], call.params["deployment"], call.body)
    status_url = (f"{call.base_url}{call.params['_path']}/operationStatuses/{deployment.operation_id}"
                  f"?api-version={call.arg('api-version')}")
    headers = {"Azure-AsyncOperation": status_url, "Retry-After": str(backend.timings.lro_retry_after_s)}
    return Answer(status, deployments.to_api(deployment, "Accepted"), resource_models.DeploymentExtended, headers)


def get(backend: Backend, call: Call) -> Answer:
    deployments = _deployments(backend)
    deployment = deployments.get(call.params["rg"], call.params["deployment"])
    return Answer(200, deployments.to_api(deployment), resource_models.DeploymentExtended)


def operation_status(backend: Backend, call: Call) -> Answer:
    deployment = _deployments(backend).get(call.params["rg"], call.params["deployment"])
    if call.params["op"] != deployment.operation_id:
        raise errors.ArmError(404, "OperationNotFound", f"The operation '{call.params['op']}' could not be found.")
    state = deployment.state
    payload: dict[str, Any] = {"status": state}
    if state == "Failed":
        payload["error"] = deployment.error()
    headers = {"Retry-After": str(backend.timings.lro_retry_after_s)} if state == "Running" else {}
    return Answer(200, payload, None, headers)


DEPLOYMENT_HANDLERS: dict[str, Handler] = {
    "Deployments_CreateOrUpdate": create_or_update,
    "Deployments_Get": get,
    "DeploymentOperationStatus_Get": operation_status,
}
