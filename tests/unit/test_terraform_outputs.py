"""Recorded `terraform output -json` fixtures match the modules' outputs.tf; outputs map to block and defaults.

Terraform leaves null top-level outputs out of `terraform output -json`, so each
fixture lists exactly the outputs its configuration makes non-null: the test
requires fixture names + ABSENT[fixture] == the names in outputs.tf, so a new or
renamed output fails here until the fixtures (and dispatcher/terraform/modules.py) follow.
aws-ecs's run network outputs (``RUN_NETWORK_OUTPUTS``) count as declared whether or
not this checkout's outputs.tf has them yet (they land on another branch).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatcher.terraform.command import FromTerraform, chosen_module
from dispatcher.terraform.modules import MODULES, module_named, recognise
from dispatcher.terraform.outputs import TerraformInputError, TerraformOutputs

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (pip install python-hcl2)")

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "terraform_outputs"
#: Outputs that are null (so absent) in each fixture's configuration, and why.
ABSENT = {
    # No iam_user_pgp_key (the plain secret is output), no run network (its lists are empty, the rest null).
    "aws-ecs.iam-user": {"encrypted_secret_access_key", "run_security_group_id", "run_vpc_id",
                         "ecs_network_configuration"},
    # A role instead of an IAM user, and a run network in two zones.
    "aws-ecs.keyless": {"iam_user_name", "access_key_id", "secret_access_key", "encrypted_secret_access_key"},
    "gcp-cloud-run.key": set(),  # create_key and create_artifact_registry
    "azure-aci.service-principal": set(),
}


def declared_outputs(module: str) -> dict[str, bool]:
    """Output name -> sensitive, as terraform/<module>/outputs.tf declares them (plus the pending ones)."""
    with (ROOT / "terraform" / module / "outputs.tf").open(encoding="utf-8") as handle:
        blocks = hcl2.load(handle)["output"]
    declared = {}
    for block in blocks:
        for name, body in block.items():
            sensitive = body.get("sensitive", [False])
            declared[name.strip('"')] = (sensitive[0] if isinstance(sensitive, list) else sensitive) in (True, "true")
    pending = module_named(module).optional_outputs - set(declared)
    return declared | dict.fromkeys(pending, False)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_every_fixture_is_listed():
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(ABSENT)


@pytest.mark.parametrize("name", sorted(ABSENT))
def test_fixture_has_exactly_the_outputs_of_outputs_tf(name):
    module = name.split(".")[0]
    declared = declared_outputs(module)
    data = fixture(name)
    assert set(data) | ABSENT[name] == set(declared), "fixture out of step with outputs.tf"
    assert not set(data) & ABSENT[name]
    for output, entry in data.items():
        assert set(entry) == {"sensitive", "type", "value"} and entry["value"] is not None
        assert entry["sensitive"] == declared[output], f"{output}: sensitive flag differs from outputs.tf"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_module_spec_matches_outputs_tf(module):
    declared = declared_outputs(module.name)
    assert module.outputs | module.optional_outputs == set(declared)
    assert not module.outputs & module.optional_outputs
    assert module.sensitive == {name for name, sensitive in declared.items() if sensitive}
    assert set(module.required) <= module.outputs


@pytest.mark.parametrize("name", sorted(ABSENT))
def test_fixture_is_recognised(name):
    outputs = TerraformOutputs.parse((FIXTURES / f"{name}.json").read_text())
    assert recognise(set(outputs.values)).name == name.split(".")[0]


def test_aws_access_key_outputs():
    module = module_named("aws-ecs")
    settings = module.settings_from(TerraformOutputs.parse(json.dumps(fixture("aws-ecs.iam-user"))))
    assert settings.block_fields == {"region_name": "eu-west-1", "assume_role_arn": None,
                                     "aws_access_key_id": "AKIAFAKEFIXTURE7EXAMPLE",
                                     "aws_secret_access_key": "fIxTuReSeCrEt/K7MDENG/bPxRfiCYzzAWSSECRET"}
    assert settings.defaults["cluster"].endswith(":cluster/prefect-dispatcher")
    assert settings.defaults["cloudwatch_logs_options"]["awslogs-group"] == "/ecs/prefect-dispatcher"
    # No run network (empty lists, null outputs absent): the pool's network is left alone.
    assert "network_configuration" not in settings.defaults and "vpc_id" not in settings.defaults


def test_aws_run_network_outputs_become_the_network_defaults():
    data = fixture("aws-ecs.keyless")
    settings = module_named("aws-ecs").settings_from(TerraformOutputs.parse(json.dumps(data)))
    expected = {"subnets": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
                "securityGroups": ["sg-0123456789abcdef0"], "assignPublicIp": "DISABLED"}
    assert settings.defaults["network_configuration"] == expected
    assert settings.defaults["vpc_id"] == "vpc-0a1b2c3d4e5f67890"
    # Without ecs_network_configuration (a root module that re-exports only some outputs): built from the parts.
    del data["ecs_network_configuration"]
    settings = module_named("aws-ecs").settings_from(TerraformOutputs.parse(json.dumps(data)))
    assert settings.defaults["network_configuration"] == expected


def test_azure_without_a_principal_writes_an_empty_block():
    """prefect-azure takes client_id, tenant_id and client_secret all or none: a tenant alone is dropped."""
    data = fixture("azure-aci.service-principal")
    for name in ("client_id", "client_secret", "service_principal_object_id", "client_secret_end_date"):
        del data[name]
    data["aci_credentials_block"]["value"].update(client_id=None, client_secret=None)
    settings = module_named("azure-aci").settings_from(TerraformOutputs.parse(json.dumps(data)))
    assert settings.block_fields == {"client_id": None, "tenant_id": None, "client_secret": None}
    assert settings.defaults == {"resource_group_name": "prefect-flows",
                                 "subscription_id": "0b1f6471-1bf0-4dda-aec3-cb9272f09590"}


@pytest.mark.parametrize("name, kept", [
    ("aws-ecs.keyless", {"region_name": "eu-west-1"}),
    ("gcp-cloud-run.key", {"project": "acme-flows"}),
    ("azure-aci.service-principal", {}),
])
def test_ambient_identity_leaves_identities_out_of_the_block(name, kept):
    """The dispatcher runs as the identity (e.g. the role as its ECS task role): assuming it again would fail."""
    module, outputs = chosen_module(FromTerraform(source="-", pool="p"), json.dumps(fixture(name)))
    fields = module.settings_from(outputs, ambient_identity=True).block_fields
    assert {k: v for k, v in fields.items() if v is not None} == kept
    assert set(module.identity_fields) <= set(fields)  # each is cleared (None removes it from an existing block)


def test_a_child_modules_outputs_read_as_one_object():
    """`terraform output -json dispatcher` for `output "dispatcher" { value = module.x }`: marks are lost,
    the module's own sensitive outputs stay secret."""
    plain = {name: entry["value"] for name, entry in fixture("gcp-cloud-run.key").items()}
    module, outputs = chosen_module(FromTerraform(source="-", pool="p"), json.dumps(plain))
    assert module.name == "gcp-cloud-run"
    assert outputs.sensitive == {"service_account_key_json", "gcp_credentials_block"}
    settings = module.settings_from(outputs)
    assert settings.block_fields["service_account_info"]["client_email"].startswith("prefect-dispatcher@")
    private_key = settings.block_fields["service_account_info"]["private_key"]
    assert outputs.scrub(f"echo {private_key.splitlines()[1]}") == "echo ***"


@pytest.mark.parametrize("text, message", [
    ('{"vpc_id": {"sensitive": false, "type": "string", "value": "vpc-1"}}', "not from one of our modules"),
    ("not json", "not JSON"),
    ("[]", "expected a JSON object"),
])
def test_unusable_outputs(text, message):
    with pytest.raises(TerraformInputError, match=message):
        chosen_module(FromTerraform(source="-", pool="p"), text)


def test_explicit_module_must_match_the_outputs():
    text = json.dumps(fixture("gcp-cloud-run.key"))
    with pytest.raises(TerraformInputError, match="not from aws-ecs"):
        chosen_module(FromTerraform(source="-", pool="p", module="aws-ecs"), text)


def test_missing_required_outputs_are_named():
    data = fixture("aws-ecs.keyless")
    del data["ecs_job_variables"]
    module, outputs = chosen_module(FromTerraform(source="-", pool="p"), json.dumps(data))
    with pytest.raises(TerraformInputError, match="lack ecs_job_variables"):
        module.settings_from(outputs)
