"""The ACI provider's pure parts: validation, request building, state mapping, names, error translation."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.mgmt.containerinstance import models as m

from providers.aci import naming, validation
from providers.aci.config import AciJobConfiguration, AciSettings
from providers.aci.errors import AzureThrottled, translate
from providers.aci.mapping import group_status
from providers.aci.requests import build_container_group, location_from_template
from providers.base import InfraPhase, RunLimits, StopCause, SubmitRequest
from providers.errors import (
    CapacityError,
    CredentialsError,
    InfrastructureNotFound,
    InvalidJobConfiguration,
    SubmissionRejected,
    TransientProviderError,
)
from providers.secrets import RunSecrets

SUB = "00000000-0000-4000-8000-000000000001"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
IDENTITY = f"/subscriptions/{SUB}/resourceGroups/id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def cfg(**fields) -> AciJobConfiguration:
    values = {"resource_group_name": "rg", "subscription_id": SUB, "arm_template": {}, "command": "echo hi", **fields}
    return AciJobConfiguration(**values)


@pytest.mark.parametrize(("fields", "field", "allowed"), [
    ({"cpu": 0}, "cpu", "steps of 0.01"),
    ({"cpu": 0.005}, "cpu", "steps of 0.01"),
    ({"cpu": 5}, "cpu", "0.01 to 4 vCPU"),
    ({"memory": 1.55}, "memory", "steps of 0.1"),
    ({"memory": 32}, "memory", "0.1 to 16 GB"),
    ({"gpu_count": 3, "gpu_sku": "V100"}, "gpu_count", "one of (1, 2, 4)"),
    ({"gpu_sku": "V100"}, "gpu_count", "when gpu_sku is set"),
    ({"gpu_count": 1, "gpu_sku": "H100"}, "gpu_sku", "one of ['K80', 'P100', 'V100']"),
    ({"subscription_id": "not-a-guid"}, "subscription_id", "a GUID"),
    ({"resource_group_name": "bad/name"}, "resource_group_name", "1-90 letters"),
    ({"resource_group_name": "ends."}, "resource_group_name", "not ending in '.'"),
    ({"identities": ["me"]}, "identities[0]", "userAssignedIdentities"),
    ({"subnet_ids": ["subnet-1"]}, "subnet_ids[0]", "virtualNetworks"),
    ({"dns_servers": ["8.8.8.8"]}, "dns_servers", "only with subnet_ids"),
    ({"subnet_ids": [SUBNET], "dns_servers": ["dns"]}, "dns_servers[0]", "an IP address"),
    ({"env": {"_BAD": "1"}}, "env._BAD", "letters, digits or underscores"),
    ({"command": "echo 'unclosed"}, "command", "shlex"),
    ({"image": " "}, "image", "an image reference"),
])
def test_invalid_values_name_field_value_and_what_is_allowed(fields, field, allowed) -> None:
    with pytest.raises(InvalidJobConfiguration) as caught:
        validation.validate(cfg(**fields), AciSettings())
    assert caught.value.field == field and allowed in caught.value.allowed
    if field == "subscription_id":
        assert "not-a-guid" not in str(caught.value)  # a SecretStr in prefect-azure: never shown


def test_valid_values_pass_and_resources_are_normalised() -> None:
    good = cfg(cpu=1.5, memory=3.5, subnet_ids=[SUBNET], dns_servers=["10.0.0.4"], identities=[IDENTITY],
               gpu_count=1, gpu_sku="V100", env={"PREFECT__FLOW_RUN_ID": "x"})
    validation.validate(good, AciSettings())
    assert validation.resources(good).vcpu == 1.5 and validation.resources(good).memory_mib == 3584
    validation.validate(cfg(cpu=8, memory=32), AciSettings(max_cpu=31, max_memory_gb=240))  # a bigger region


def test_the_request_is_a_direct_never_restarting_group() -> None:
    attempt, flow_run = uuid.uuid4(), uuid.uuid4()
    request = SubmitRequest(flow_run_id=flow_run, attempt_id=attempt, idempotency_key="k", workspace="ws", pool="p",
                            configuration=cfg(), limits=RunLimits(max_runtime_s=60),
                            secrets=RunSecrets(values=["from-a-block-1234"]))
    config = cfg(env={"API_TOKEN": "t0ken-value", "FROM_BLOCK": "from-a-block-1234", "PLAIN": "x"},
                 entrypoint="/opt/prefect/entrypoint.sh", identities=[IDENTITY], keep_container_group=True)
    group = build_container_group(config, request, "westeurope")
    body = group.serialize()
    assert body["location"] == "westeurope" and body["properties"]["restartPolicy"] == "Never"
    assert body["properties"]["osType"] == "Linux" and body["identity"]["type"] == "UserAssigned"
    container = body["properties"]["containers"][0]
    assert container["name"] == naming.CONTAINER_NAME
    assert container["properties"]["command"] == ["/opt/prefect/entrypoint.sh", "echo", "hi"]
    env = {v["name"]: v for v in container["properties"]["environmentVariables"]}
    assert "value" not in env["API_TOKEN"] and "value" not in env["FROM_BLOCK"] and env["PLAIN"]["value"] == "x"
    assert body["tags"][naming.TAG_ATTEMPT] == str(attempt) and body["tags"][naming.TAG_KEEP] == "true"


def test_names_are_deterministic_and_valid() -> None:
    attempt = uuid.UUID("0192f5e4-0000-7000-8000-000000000000")
    name = naming.group_name(attempt)
    assert name == "prefect-0192f5e4000070008000000000000000" and len(name) <= 63
    flow_run = uuid.uuid4()
    assert naming.parse_infrastructure_id(naming.infrastructure_id(flow_run, name)) == (str(flow_run), name)
    with pytest.raises(ValueError):
        naming.parse_infrastructure_id("arn:aws:ecs:task")


def test_template_location_only_when_literal() -> None:
    assert location_from_template(cfg(arm_template={"parameters": {"location": {"defaultValue": "[resourceGroup()"
                                                                                 ".location]"}}})) is None
    assert location_from_template(cfg(arm_template={"parameters": {"location": {"defaultValue": "uksouth"}}})) == \
        "uksouth"


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _group(provisioning="Succeeded", state="Running", container="Running", exit_code=None, detail=None,
           events=()) -> m.ContainerGroup:
    """A GET answer as ARM sends it (read-only members only survive deserialisation)."""
    current = {"state": container, "startTime": _iso(T0 + timedelta(seconds=20)), "exitCode": exit_code,
               "detailStatus": detail}
    if container == "Terminated":
        current["finishTime"] = _iso(T0 + timedelta(seconds=80))
    pulling = {"name": "Pulling", "firstTimestamp": _iso(T0), "lastTimestamp": _iso(T0), "message": "pulling",
               "count": 1}
    body = {"location": "eastus", "properties": {
        "provisioningState": provisioning, "osType": "Linux", "instanceView": {"state": state, "events": []},
        "containers": [{"name": naming.CONTAINER_NAME, "properties": {
            "image": "i", "resources": {"requests": {"cpu": 1, "memoryInGB": 1}},
            "instanceView": {"currentState": {k: v for k, v in current.items() if v is not None},
                             "events": [pulling, *events]}}}]}}
    return m.ContainerGroup.deserialize(body)


@pytest.mark.parametrize(("args", "phase", "cause", "code"), [
    (("Pending", "Pending", "Waiting"), InfraPhase.PENDING, None, None),
    (("Creating", "Pending", "Waiting"), InfraPhase.PENDING, None, None),
    (("Succeeded", "Running", "Running"), InfraPhase.RUNNING, None, None),
    (("Succeeded", "Succeeded", "Terminated", 0, "Completed"), InfraPhase.EXITED, StopCause.EXITED, 0),
    (("Succeeded", "Failed", "Terminated", 3, "Error"), InfraPhase.EXITED, StopCause.EXITED, 3),
    (("Succeeded", "Stopped", "Terminated", 143, "Killed"), InfraPhase.EXITED, StopCause.STOPPED, 143),
    (("Failed", "Failed", "Waiting", None, "ImagePullBackOff"), InfraPhase.EXITED, StopCause.FAILED_TO_START, None),
    (("Repairing", "Running", "Running"), InfraPhase.RUNNING, None, None),
    (("Succeeded", "Stopped", "Running"), InfraPhase.RUNNING, None, None),  # still being killed: still billed
    (("Succeeded", "Hibernating", "Running"), InfraPhase.UNKNOWN, None, None),
    (("Moving", "Running", "Running"), InfraPhase.UNKNOWN, None, None),
    (("Succeeded", "Running", "Sleeping"), InfraPhase.UNKNOWN, None, None),
])
def test_every_state_is_mapped_explicitly(args, phase, cause, code) -> None:
    status = group_status(_group(*args), "id", naming.CONTAINER_NAME)
    assert (status.phase, status.stop_cause, status.exit_code) == (phase, cause, code)


def test_metering_runs_from_the_first_pull_to_the_finish() -> None:
    status = group_status(_group("Succeeded", "Succeeded", "Terminated", 0), "id", naming.CONTAINER_NAME)
    assert status.started_at == T0 and status.stopped_at == T0 + timedelta(seconds=80)


def test_a_pull_failure_carries_acis_events() -> None:
    failed = {"name": "Failed", "message": 'Failed to pull image "x": not found', "type": "Warning",
              "firstTimestamp": _iso(T0 + timedelta(seconds=5)), "lastTimestamp": _iso(T0 + timedelta(seconds=9))}
    status = group_status(_group("Failed", "Failed", "Waiting", None, "ImagePullBackOff", events=[failed]), "id",
                          naming.CONTAINER_NAME)
    assert 'Failed to pull image "x"' in status.reason and "ImagePullBackOff" in status.reason
    assert status.stopped_at == T0 + timedelta(seconds=9)


class _Response:
    def __init__(self, status: int, headers: dict) -> None:
        self.status_code, self.headers, self.reason = status, headers, "r"
        self.request = None

    def text(self) -> str:
        return ""


def _error(status: int, code: str, message: str = "m", headers: dict | None = None, cls=HttpResponseError):
    exc = cls(message=message, response=_Response(status, headers or {}))
    exc.error = type("E", (), {"code": code, "message": message})()
    return exc


@pytest.mark.parametrize(("exc", "expected"), [
    (_error(429, "ResourceRequestsThrottled", headers={"Retry-After": "17"}), AzureThrottled),
    (_error(400, "ContainerGroupQuotaReached"), CapacityError),
    (_error(409, "ServiceUnavailable"), CapacityError),
    (_error(503, "ServiceUnavailable"), TransientProviderError),
    (_error(403, "AuthorizationFailed"), CredentialsError),
    (_error(404, "ResourceNotFound", cls=ResourceNotFoundError), InfrastructureNotFound),
    (_error(400, "InaccessibleImage"), SubmissionRejected),
    (ServiceRequestError("connection refused"), TransientProviderError),
])
def test_azure_errors_translate_by_class(exc, expected) -> None:
    translated = translate(exc, "op", SubmissionRejected, secrets=["s3cret-value"])
    assert type(translated) is expected
    if expected is AzureThrottled:
        assert translated.retry_after_s == 17


def test_secrets_are_scrubbed_from_arm_messages() -> None:
    exc = _error(400, "InvalidRequestContent", message="bad value s3cret-value in env")
    assert "s3cret-value" not in str(translate(exc, "create", SubmissionRejected, secrets=["s3cret-value"]))


def test_dispatcher_check_findings_never_show_the_secret() -> None:
    from providers.aci.checks import check_aci_settings

    assert [f.level for f in check_aci_settings(AciSettings())] == ["ok", "ok"]
    partial = AciSettings(credentials={"client_id": "app", "client_secret": "s3cret-value"})
    findings = check_aci_settings(partial)
    assert findings[0].level == "fail" and all("s3cret-value" not in f.message for f in findings)
    insecure = check_aci_settings(AciSettings(arm_endpoint="http://127.0.0.1:1"))
    assert insecure[-1].level == "fail" and "allow_http" in insecure[-1].message
