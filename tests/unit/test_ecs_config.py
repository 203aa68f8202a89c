"""ECS job variables, credentials and settings: Prefect's names, block data, client settings."""

from __future__ import annotations

import pytest
from prefect.utilities.templating import apply_values

from providers.ecs.clients import AwsClients, effective_credentials
from providers.ecs.config import EcsJobConfiguration, EcsSettings, EcsVariables
from providers.ecs.credentials import AssumeRoleParameters, AwsClientParameters, AwsCredentials
from providers.ecs.provider import EcsProvider
from providers.errors import InvalidJobConfiguration

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
BLOCK_DATA = {  # what Prefect substitutes for {"$ref": {"block_document_id": ...}} of an aws-credentials block
    "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": SECRET, "aws_session_token": None,
    "profile_name": None, "region_name": "eu-west-1",
    "aws_client_parameters": {"api_version": None, "use_ssl": True, "verify": None, "verify_cert_path": None,
                              "endpoint_url": None, "config": {"connect_timeout": 5}},
    "assume_role_arn": None, "assume_role_kwargs": {"RoleSessionName": None, "ProvidedContexts": None},
    "block_type_slug": "aws-credentials",
}


def test_ecs_template_matches_prefect_aws() -> None:
    ecs_worker = pytest.importorskip(
        "prefect_aws.workers.ecs_worker",
        reason="prefect-aws is not installed (it is only needed to compare names: pip install prefect-aws)",
    )
    from prefect_aws.assume_role_parameters import AssumeRoleParameters as TheirRole
    from prefect_aws.client_parameters import AwsClientParameters as TheirParameters
    from prefect_aws.credentials import AwsCredentials as TheirCredentials

    assert set(ecs_worker.ECSVariables.model_fields) <= set(EcsVariables.model_fields)
    assert set(ecs_worker.ECSJobConfiguration.model_fields) <= set(EcsJobConfiguration.model_fields)
    assert set(TheirCredentials.model_fields) <= set(AwsCredentials.model_fields)
    assert set(TheirParameters.model_fields) <= set(AwsClientParameters.model_fields)
    assert set(TheirRole.model_fields) - {"ProvidedContexts"} <= set(AssumeRoleParameters.model_fields)
    their_launch = ecs_worker.ECSVariables.model_json_schema()["properties"]["launch_type"]["enum"]
    assert set(their_launch) == set(EcsVariables.model_json_schema()["properties"]["launch_type"]["enum"])
    block = TheirCredentials(aws_access_key_id="AKIA", aws_secret_access_key=SECRET, region_name="eu-west-1")
    ours = AwsCredentials.model_validate(block.model_dump(mode="json", context={"include_secrets": True}))
    assert ours.aws_secret_access_key.get_secret_value() == SECRET and ours.region_name == "eu-west-1"


def test_block_data_validates_and_hides_the_secret() -> None:
    creds = AwsCredentials.model_validate(BLOCK_DATA)
    assert creds.aws_secret_access_key.get_secret_value() == SECRET
    assert SECRET not in repr(creds) and SECRET not in str(EcsJobConfiguration(aws_credentials=BLOCK_DATA))
    assert not creds.is_empty() and AwsCredentials().is_empty()
    assert AwsCredentials(region_name="us-east-1").is_empty()


def test_variables_offer_the_aws_credentials_block() -> None:
    schema = EcsVariables.model_json_schema()
    definition = schema["definitions"]["AwsCredentials"]
    assert definition["block_type_slug"] == "aws-credentials"
    assert "aws_secret_access_key" in definition["secret_fields"]


def test_fingerprint_identifies_a_credential_set_without_revealing_it() -> None:
    creds = AwsCredentials.model_validate(BLOCK_DATA)
    assert creds.fingerprint() == AwsCredentials.model_validate(BLOCK_DATA).fingerprint()
    assert SECRET not in creds.fingerprint() and len(creds.fingerprint()) == 16
    for change in [{"region_name": "us-east-1"}, {"aws_secret_access_key": "other"},
                   {"aws_client_parameters": {"endpoint_url": "http://localhost:4566"}},
                   {"assume_role_arn": "arn:aws:iam::1:role/r"}]:
        assert AwsCredentials.model_validate({**BLOCK_DATA, **change}).fingerprint() != creds.fingerprint()


def resolve(template: dict, values: dict) -> EcsJobConfiguration:
    """What Prefect's from_template_and_values does once block references are resolved (no server needed)."""
    defaults = EcsJobConfiguration._get_base_config_defaults(template["variables"]["properties"])
    resolved = apply_values(template["job_configuration"], {**defaults, **values}, remove_notset=True)
    return EcsJobConfiguration.model_validate(resolved)


def test_base_job_template_resolves_deployment_variables() -> None:
    template = EcsProvider.base_job_template()
    assert template["job_configuration"]["task_definition"] == {}
    values = {"aws_credentials": BLOCK_DATA, "cpu": 2048, "memory": 8192, "launch_type": "FARGATE_SPOT",
              "network_configuration": {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]}},
              "env": {"EXTRA": "1"}, "cluster": "prod", "ephemeral_storage": 50}
    cfg = resolve(template, values)
    assert (cfg.cpu, cfg.memory, cfg.launch_type, cfg.cluster, cfg.ephemeral_storage) == (2048, 8192, "FARGATE_SPOT", "prod", 50)
    assert cfg.network_configuration.subnets == ["subnet-1"] and cfg.env["EXTRA"] == "1"
    assert cfg.aws_credentials.region_name == "eu-west-1"
    assert cfg.image and cfg.image.startswith("prefecthq/prefect:")  # Prefect's image unless the pool says otherwise
    defaults = resolve(template, {})
    assert (defaults.cpu, defaults.memory, defaults.task_definition_arn) == (None, None, None)


def test_settings_follow_the_aws_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    assert (EcsSettings().retry_mode, EcsSettings().max_attempts) == ("adaptive", 5)
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "10")
    assert (EcsSettings().retry_mode, EcsSettings().max_attempts) == ("standard", 10)
    assert (EcsSettings().log_lines_on_crash, EcsSettings().describe_batch_size) == (20, 100)
    with pytest.raises(ValueError):
        EcsSettings(describe_batch_size=101)


def test_operator_credentials_fill_in_for_pools_without_any() -> None:
    operator = AwsCredentials(aws_access_key_id="AKIAOPERATOR", aws_secret_access_key="op", region_name="us-east-2")
    settings = EcsSettings(credentials=operator, region_name="eu-central-1")
    assert effective_credentials(AwsCredentials(), settings).aws_access_key_id == "AKIAOPERATOR"
    assert effective_credentials(AwsCredentials(region_name="ap-south-1"), settings).region_name == "ap-south-1"
    pool = AwsCredentials.model_validate(BLOCK_DATA)
    assert effective_credentials(pool, settings).aws_access_key_id == "AKIAEXAMPLE"
    assert effective_credentials(AwsCredentials(), EcsSettings(region_name="eu-central-1")).region_name == "eu-central-1"


def test_client_config_keeps_user_options_but_owns_retries() -> None:
    clients = AwsClients(EcsSettings(retry_mode="adaptive", max_attempts=4, max_pool_connections=50))
    params = AwsClientParameters(config={"connect_timeout": 5, "retries": {"max_attempts": 99}, "max_pool_connections": 1})
    config = clients.config(params)
    assert config.connect_timeout == 5 and config.max_pool_connections == 50
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 4}
    with pytest.raises(InvalidJobConfiguration) as info:
        clients.config(AwsClientParameters(config={"not_an_option": 1}))
    assert info.value.field == "aws_credentials.aws_client_parameters.config"
