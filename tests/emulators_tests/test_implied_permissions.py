"""Permissions a cloud authorizes on a call besides the operation's own, as the emulators record them.

Least privilege is checked against these records (tests/terraform/test_least_privilege.py), so
a permission IAM would check but the emulator did not record would be missing from the proof.
"""

from __future__ import annotations

from tests.emulators.aci.routes import linked_access_permissions
from tests.emulators.ecs.protocol import implied_permissions
from tests.emulators.ecs.taskdefs import TaskDefinitionStore
from tests.emulators_tests.cloud_run_helpers import clients, create
from tests.emulators_tests.ecs_helpers import register

ROLE = "arn:aws:iam::123456789012:role/run"


def test_ecs_records_pass_role_and_tag_on_create(emu, ecs):
    td = register(ecs, family="roles", taskRoleArn=ROLE, tags=[{"key": "prefect.io/flow-run-id", "value": "x"}])
    assert emu.permissions["iam:PassRole"] == 1 and emu.permissions["ecs:TagResource"] == 1
    ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"])
    assert emu.permissions["iam:PassRole"] == 1  # reading passes nothing


def test_ecs_run_task_passes_the_definition_roles_and_the_overrides():
    store = TaskDefinitionStore("eu-west-1", "123456789012")
    container = [{"name": "flow", "image": "i", "essential": True, "memory": 512}]
    store.register({"family": "with-role", "executionRoleArn": ROLE, "containerDefinitions": container}, 0.0)
    store.register({"family": "no-role", "containerDefinitions": container}, 0.0)
    assert implied_permissions("RunTask", {"taskDefinition": "with-role"}, store) == ("iam:PassRole",)
    assert implied_permissions("RunTask", {"taskDefinition": "no-role"}, store) == ()
    assert implied_permissions("RunTask", {"taskDefinition": "no-role", "overrides": {"taskRoleArn": ROLE},
                                           "tags": [{"key": "k", "value": "v"}]}, store) == \
        ("ecs:TagResource", "iam:PassRole")
    assert implied_permissions("RunTask", {"taskDefinition": "no-role:x"}, store) == ()  # the handler refuses it
    assert implied_permissions("DescribeTasks", {"tags": ["x"]}, store) == ()


def test_cloud_run_records_act_as_when_a_job_is_created(cr):
    jobs, _, _ = clients(cr)
    create(jobs, cr)
    assert cr.permissions["run.jobs.create"] == 1 and cr.permissions["iam.serviceAccounts.actAs"] == 1
    jobs.get_job(name=f"{cr.parent}/jobs/cfg-abc123")
    assert cr.permissions["iam.serviceAccounts.actAs"] == 1


def test_aci_records_the_linked_access_checks():
    identity = {"type": "UserAssigned", "userAssignedIdentities": {"/subscriptions/s/.../id": {}}}
    assert linked_access_permissions({"identity": identity, "properties": {"subnetIds": [{"id": "/sub"}]}}) == (
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
        "Microsoft.Network/virtualNetworks/subnets/join/action")
    assert linked_access_permissions({"identity": {"type": "SystemAssigned"}, "properties": {}}) == ()
    assert linked_access_permissions(None) == ()
