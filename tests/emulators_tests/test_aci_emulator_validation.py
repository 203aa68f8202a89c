"""Request bodies checked against the SDK's models and ACI's rules; responses checked before they leave."""

from __future__ import annotations

import copy

import pytest
from azure.core.exceptions import HttpResponseError

from tests.emulators.aci.groups import ContainerGroup
from tests.emulators_tests.aci_helpers import (
    RG,
    arm,
    body,
    container,
    error_code,
    group,
    group_path,
)


def put(emu, payload, name="g1"):
    status, answer, _ = arm(emu, "PUT", group_path(emu, name), payload)
    return status, (answer or {}).get("error", {}).get("code"), (answer or {}).get("error", {}).get("message", "")


def first_container(payload):
    return payload["properties"]["containers"][0]["properties"]


def test_unknown_members_and_wrong_types_are_invalid_request_content(aci_emu):
    unknown = body()
    unknown["properties"]["restartPolicyy"] = "Never"
    assert put(aci_emu, unknown)[:2] == (400, "InvalidRequestContent")
    assert "Could not find member 'restartPolicyy' on object of type 'ContainerGroupProperties'" in put(
        aci_emu, unknown)[2]
    wrong = body()
    first_container(wrong)["resources"]["requests"]["cpu"] = "lots"
    assert put(aci_emu, wrong)[2].endswith(
        "Could not convert string to double: lots. Path 'properties.containers[0].properties.resources.requests.cpu''.")
    numeric_string = body()
    first_container(numeric_string)["resources"]["requests"]["cpu"] = "1"  # ARM's JSON reader converts it
    assert put(aci_emu, numeric_string)[0] == 201
    assert arm(aci_emu, "PUT", group_path(aci_emu), raw=b"{not json")[1]["error"]["code"] == "InvalidRequestContent"
    assert put(aci_emu, body(properties=[]))[1] == "InvalidRequestContent"


@pytest.mark.parametrize("name", ["UPPER", "-lead", "trail-", "two--dashes", "under_score", "a" * 64])
def test_group_name_rules(aci_emu, name):
    assert put(aci_emu, body(), name)[:2] == (400, "InvalidContainerGroupName")


def test_a_63_character_name_is_fine(aci_emu):
    assert put(aci_emu, body(), "a" * 63)[0] == 201


@pytest.mark.parametrize("change, code", [
    (lambda p: p["properties"].pop("osType"), "InvalidOsType"),
    (lambda p: p["properties"].update(osType="Solaris"), "InvalidOsType"),
    (lambda p: p["properties"].update(restartPolicy="Sometimes"), "InvalidRequestContent"),
    (lambda p: first_container(p).pop("resources"), "ResourceRequestsNotSpecified"),
    (lambda p: first_container(p)["resources"]["requests"].update(cpu=0.005), "InvalidCpuRequest"),
    (lambda p: first_container(p)["resources"]["requests"].update(memoryInGB=1.25), "InvalidMemoryRequest"),
    (lambda p: first_container(p)["resources"].update(limits={"cpu": 2}),
     "ContainerLimitGreaterThanContainerGroupTotalRequest"),
    (lambda p: first_container(p).update(image=""), "InvalidImage"),
    (lambda p: first_container(p).update(environmentVariables=[{"name": "_BAD", "value": "1"}]),
     "InvalidEnvironmentVariable"),
    (lambda p: first_container(p)["resources"]["requests"].update(gpu={"count": 3, "sku": "V100"}),
     "InvalidGpuCount"),
    (lambda p: p["properties"]["containers"][0].update(name="Job"), "InvalidContainerName"),
    (lambda p: p["properties"]["containers"].append(copy.deepcopy(p["properties"]["containers"][0])),
     "DuplicateContainerName"),
    (lambda p: p["properties"].update(subnetIds=[{"id": "subnet-1"}]), "InvalidSubnetId"),
    (lambda p: p.update(identity={"type": "UserAssigned"}), "InvalidIdentity"),
    (lambda p: p.pop("location"), "LocationRequired"),
    (lambda p: p.update(location="mars"), "LocationNotAvailableForResourceType"),
    (lambda p: first_container(p).pop("image"), "InvalidImage"),
])
def test_aci_rules(aci_emu, change, code):
    payload = body()
    change(payload)
    status, got, message = put(aci_emu, payload)
    assert (status, got) == (400, code), message


def test_a_group_above_the_regional_size_gets_the_capacity_answer(aci_emu):
    payload = group(container("a", cpu=3), container("b", cpu=2)).serialize()
    status, code, message = put(aci_emu, payload)
    assert (status, code) == (409, "ServiceUnavailable")
    assert message.endswith("Resource requested: '5' CPU '3' GB memory 'Linux' OS")


def test_model_required_members_missing(aci_emu):
    payload = body()
    payload["properties"]["containers"][0].pop("name")
    assert put(aci_emu, payload)[1] == "InvalidRequestContent"
    payload = body()
    first_container(payload)["environmentVariables"] = [{"value": "no name"}]
    status, code, message = put(aci_emu, payload)
    assert (status, code) == (400, "InvalidRequestContent") and "Required property 'name'" in message


async def test_identities_come_back_with_their_ids_and_secrets_do_not(aci, aci_emu):
    from azure.mgmt.containerinstance.models import (
        ContainerGroupIdentity,
        UserAssignedIdentities,
    )

    identity_id = (f"/subscriptions/{aci_emu.subscription_id}/resourceGroups/rg/providers/"
                   "Microsoft.ManagedIdentity/userAssignedIdentities/flows")
    spec = group(container(secure={"PREFECT_API_KEY": "pnu_secret"}, env={"A": "1"}), identity=ContainerGroupIdentity(
        type="SystemAssigned, UserAssigned", user_assigned_identities={identity_id: UserAssignedIdentities()}))
    created = await (await aci.container_groups.begin_create_or_update(RG, "g1", spec, polling=False)).result()
    assert created.identity.principal_id and created.identity.user_assigned_identities[identity_id].client_id
    variables = {v.name: (v.value, v.secure_value) for v in created.containers[0].environment_variables}
    assert variables == {"A": ("1", None), "PREFECT_API_KEY": (None, None)}


async def test_a_response_that_breaks_its_model_is_an_emulator_bug(aci, aci_emu, monkeypatch):
    original = ContainerGroup.to_api

    def broken(self, instance_view=True):
        out = original(self, instance_view)
        out["properties"]["notAField"] = True
        return out

    monkeypatch.setattr(ContainerGroup, "to_api", broken)
    with pytest.raises(HttpResponseError) as failed:
        await aci.container_groups.begin_create_or_update(RG, "g1", group(), polling=False)
    assert (failed.value.status_code, error_code(failed.value)) == (500, "InternalServerError")
    assert len(aci_emu.errors) == 1 and "ContainerGroups_CreateOrUpdate response breaks its output shape" in \
        aci_emu.errors[0] and "notAField" in aci_emu.errors[0]
    aci_emu.errors.clear()


def test_azure_identity_refuses_an_http_authority():
    """Why the emulator has no AAD token endpoint: azure-identity will not call one over http."""
    from azure.identity import ClientSecretCredential

    with pytest.raises(ValueError, match="must be a TLS protected"):
        ClientSecretCredential("tenant", "client", "secret", authority="http://127.0.0.1:1")
