"""Our Terraform modules: which outputs each declares, and what they mean for a Prefect pool.

Each module's outputs become one credentials block (the type its provider reads:
see ``providers/<cloud>/credentials.py``) and a pool's job variable defaults. The
output names here are checked against each module's ``outputs.tf`` by the tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dispatcher.terraform.outputs import TerraformInputError, TerraformOutputs


class PoolSettings(BaseModel):
    """What a module's outputs set: the block's fields and the pool's defaults."""

    block_fields: dict[str, Any] = Field(
        description="Fields of the credentials block; None removes a field (e.g. keys replaced by a role)."
    )
    defaults: dict[str, Any] = Field(description="Job variable defaults; a dict is merged into the pool's own.")


class TerraformModule(BaseModel):
    """One module under terraform/: its outputs and the pool it provisions for."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Directory under terraform/, e.g. aws-ecs.")
    pool_type: str = Field(description="Push pool type its outputs are for.")
    block_type: str = Field(description="Slug of the Prefect block type of its credentials.")
    credentials_variable: str = Field(description="Job variable that references the block.")
    outputs: frozenset[str] = Field(description="Output names declared in its outputs.tf.")
    sensitive: frozenset[str] = Field(description="Outputs declared sensitive (kept secret even if the marks are lost).")
    optional_outputs: frozenset[str] = Field(
        default=frozenset(), description="Outputs read when present that this branch's outputs.tf may not declare yet."
    )
    required: tuple[str, ...] = Field(description="Outputs without which no block or defaults can be written.")
    identity_fields: tuple[str, ...] = Field(
        description="Block fields naming an identity to use (key, role to assume, principal): "
                    "left out when the dispatcher runs as the module's identity itself."
    )
    settings: Callable[[TerraformOutputs], PoolSettings] = Field(description="Maps its outputs to PoolSettings.")

    def settings_from(self, outputs: TerraformOutputs, ambient_identity: bool = False) -> PoolSettings:
        """``ambient_identity``: the dispatcher runs as the identity (task role, IRSA, workload or managed
        identity), so the block keeps only its non-identity fields (region, project) and the SDK's
        default credential chain is used."""
        missing = [name for name in self.required if name not in outputs.values]
        if missing:
            raise TerraformInputError(f"outputs of {self.name} lack {', '.join(missing)} "
                                      "(give the module's full `terraform output -json`)")
        settings = self.settings(outputs)
        if ambient_identity:
            settings.block_fields.update(dict.fromkeys(self.identity_fields))
        return settings


def _object(outputs: TerraformOutputs, name: str) -> dict[str, Any]:
    value = outputs.get(name)
    if not isinstance(value, dict):
        raise TerraformInputError(f"output {name} must be an object, got {type(value).__name__}")
    return value


def _non_null(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _ids(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]


#: Outputs of aws-ecs's optional run network (private subnets behind NAT gateways with static egress IPs).
RUN_NETWORK_OUTPUTS = frozenset({
    "egress_ip_addresses", "run_subnet_ids", "run_security_group_id", "run_vpc_id", "ecs_network_configuration",
})


def _ecs_network(outputs: TerraformOutputs) -> dict[str, Any]:
    """The module's network_configuration, else one from its subnets and security group; {} without a run network."""
    configured = outputs.get("ecs_network_configuration")
    if isinstance(configured, dict):
        return _non_null(configured)
    network: dict[str, Any] = {}
    if outputs.get("run_subnet_ids"):  # an empty list without create_run_network
        # Private subnets reach the internet through their NAT gateways (the static egress IPs), not a public IP.
        network.update(subnets=_ids(outputs.get("run_subnet_ids")), assignPublicIp="DISABLED")
    if outputs.get("run_security_group_id"):
        network["securityGroups"] = _ids(outputs.get("run_security_group_id"))
    return network


def _aws_settings(outputs: TerraformOutputs) -> PoolSettings:
    block = _object(outputs, "aws_credentials_block")
    fields = ("region_name", "assume_role_arn", "aws_access_key_id", "aws_secret_access_key")
    defaults = _non_null(_object(outputs, "ecs_job_variables"))
    network = _ecs_network(outputs)
    if network:
        defaults["network_configuration"] = network
    if outputs.get("run_vpc_id"):
        defaults["vpc_id"] = outputs.get("run_vpc_id")
    return PoolSettings(block_fields={f: block.get(f) for f in fields}, defaults=defaults)


def _gcp_settings(outputs: TerraformOutputs) -> PoolSettings:
    block = _object(outputs, "gcp_credentials_block")
    info = block.get("service_account_info")
    if info is None and isinstance(outputs.get("service_account_key_json"), str):
        try:
            info = json.loads(outputs.get("service_account_key_json"))
        except json.JSONDecodeError:
            raise TerraformInputError("output service_account_key_json is not a JSON key") from None
    fields = {"project": block.get("project") or outputs.get("project_id"), "service_account_info": info}
    return PoolSettings(block_fields=fields, defaults=_non_null(_object(outputs, "cloud_run_job_variables")))


def _azure_settings(outputs: TerraformOutputs) -> PoolSettings:
    block = _object(outputs, "aci_credentials_block")
    principal = ("client_id", "tenant_id", "client_secret")
    if block.get("client_id") and block.get("client_secret"):
        fields = {f: block.get(f) for f in principal}
    else:
        # All three or none (prefect-azure refuses a tenant alone): none is DefaultAzureCredential.
        fields = dict.fromkeys(principal)
    return PoolSettings(block_fields=fields, defaults=_non_null(_object(outputs, "aci_job_variables")))


MODULES: tuple[TerraformModule, ...] = (
    TerraformModule(
        name="aws-ecs", pool_type="ecs:push", block_type="aws-credentials", credentials_variable="aws_credentials",
        outputs=frozenset({
            "region", "dispatcher_role_arn", "dispatcher_policy_arn", "cluster_arn", "cluster_name",
            "execution_role_arn", "task_role_arn", "log_group_name", "ecs_job_variables", "iam_user_name",
            "access_key_id", "secret_access_key", "encrypted_secret_access_key", "aws_credentials_block",
        }),
        sensitive=frozenset({"access_key_id", "secret_access_key", "aws_credentials_block"}),
        optional_outputs=RUN_NETWORK_OUTPUTS,
        required=("aws_credentials_block", "ecs_job_variables"), settings=_aws_settings,
        identity_fields=("assume_role_arn", "aws_access_key_id", "aws_secret_access_key"),
    ),
    TerraformModule(
        name="gcp-cloud-run", pool_type="cloud-run-v2:push", block_type="gcp-credentials",
        credentials_variable="credentials",
        outputs=frozenset({
            "project_id", "dispatcher_service_account_email", "runtime_service_account_email",
            "service_account_key_json", "gcp_credentials_block", "artifact_registry_url", "cloud_run_job_variables",
        }),
        sensitive=frozenset({"service_account_key_json", "gcp_credentials_block"}),
        required=("gcp_credentials_block", "cloud_run_job_variables"), settings=_gcp_settings,
        identity_fields=("service_account_info",),
    ),
    TerraformModule(
        name="azure-aci", pool_type="azure-container-instance:push", block_type="azure-container-instance-credentials",
        credentials_variable="aci_credentials",
        outputs=frozenset({
            "tenant_id", "subscription_id", "resource_group_name", "resource_group_id", "role_definition_id",
            "client_id", "service_principal_object_id", "client_secret", "client_secret_end_date",
            "aci_credentials_block", "aci_job_variables",
        }),
        sensitive=frozenset({"client_secret", "aci_credentials_block"}),
        required=("aci_credentials_block", "aci_job_variables"), settings=_azure_settings,
        identity_fields=("client_id", "tenant_id", "client_secret"),
    ),
)


def module_named(name: str) -> TerraformModule:
    for module in MODULES:
        if module.name == name:
            return module
    raise TerraformInputError(f"no Terraform module {name!r}; ours: {', '.join(m.name for m in MODULES)}")


def recognise(names: set[str]) -> TerraformModule:
    """The module that declares the most of these output names (their names never overlap)."""
    overlap = {m.name: len(names & (m.outputs | m.optional_outputs)) for m in MODULES}
    best = max(MODULES, key=lambda m: overlap[m.name])
    if overlap[best.name] == 0:
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        raise TerraformInputError(f"outputs ({shown}) are not from one of our modules "
                                  f"({', '.join(m.name for m in MODULES)}); name it with --module")
    return best
