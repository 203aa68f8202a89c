"""The known secret values of a run (providers/secrets.py): every source, and masking them."""

from __future__ import annotations

import pickle
from typing import Any, Optional

import pytest
from prefect.workers.base import BaseJobConfiguration
from pydantic import BaseModel, SecretBytes, SecretStr

from providers.base import RunLimits, SubmitRequest
from providers.secrets import RunSecrets, name_looks_secret, reference_paths, run_secrets


class Credentials(BaseModel):
    region: str = "eu-west-1"
    access_key_id: Optional[str] = None
    secret_access_key: Optional[SecretStr] = None
    certificate: Optional[SecretBytes] = None


class CloudConfiguration(BaseJobConfiguration):
    credentials: Credentials = Credentials()
    registry: dict[str, Any] = {}
    image: Optional[str] = None
    args: list[str] = []


def secrets_of(configuration: BaseModel, applied: Any = None, extra: tuple = ()) -> set[str]:
    return set(run_secrets(configuration, applied, extra).revealed())


def test_secret_fields_anywhere_in_the_model() -> None:
    configuration = CloudConfiguration(
        credentials=Credentials(secret_access_key=SecretStr("aws-secret-value"), certificate=SecretBytes(b"-cert-bytes-")),
    )
    assert secrets_of(configuration) == {"aws-secret-value", "-cert-bytes-"}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("PREFECT_API_KEY", True),
        ("PREFECT_API_AUTH_STRING", True),
        ("DB_PASSWORD", True),
        ("db_passwd", True),
        ("GITHUB_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("ssh-private-key", True),
        ("dbPassword", True),
        ("APIKey", True),
        ("SECRETS_FILE", True),
        ("MONKEY_BUSINESS", False),
        ("AUTHOR", False),
        ("KEYBOARD", False),
        ("PREFECT_API_URL", False),
        ("PATH", False),
    ],
)
def test_env_names_that_look_secret(name: str, secret: bool) -> None:
    assert name_looks_secret(name) is secret


def test_env_values_by_name_including_the_workspace_api_key() -> None:
    configuration = CloudConfiguration(
        env={"PREFECT_API_KEY": "pnu_workspace_key", "PREFECT_API_AUTH_STRING": "admin:hunter22", "DB_PASSWORD": "db-pass",
             "PREFECT_API_URL": "http://prefect:4200/api", "UNSET_TOKEN": None}
    )  # fmt: skip
    assert secrets_of(configuration) == {"pnu_workspace_key", "admin:hunter22", "db-pass"}


def test_values_from_block_and_variable_placeholders() -> None:
    applied = {
        "env": {"TOKEN": "{{ prefect.blocks.secret.token }}", "PLAIN": "visible"},
        "image": "registry.example.com/{{ prefect.variables.image_name }}:latest",
        "args": ["--user", "{{ prefect.variables.user_name }}"],
    }
    configuration = CloudConfiguration(
        env={"TOKEN": "block-token-value", "PLAIN": "visible"},
        image="registry.example.com/secret-image:latest",
        args=["--user", "variable-user"],
    )
    # The substituted part alone, and the whole string that carries it.
    assert secrets_of(configuration, applied) == {
        "block-token-value", "secret-image", "registry.example.com/secret-image:latest", "variable-user",
    }  # fmt: skip


def test_values_below_a_block_document_ref() -> None:
    applied = {"registry": {"$ref": {"block_document_id": "5b6f4a2e-0000-0000-0000-000000000000"}}, "image": "plain"}
    configuration = CloudConfiguration(registry={"username": "robot-user", "password": "robot-pass", "port": 5000}, image="plain")
    assert secrets_of(configuration, applied) == {"robot-user", "robot-pass", "5000"}


def test_reference_paths_name_where_references_are() -> None:
    applied = {"a": [{"b": "{{ prefect.blocks.x.y }}"}], "c": {"$ref": {"block_document_id": "id"}}, "d": "{{ nothing }}"}
    assert list(reference_paths(applied)) == [(("a", 0, "b"), "{{ prefect.blocks.x.y }}"), (("c",), None)]


def test_extra_values_and_short_values_are_ignored() -> None:
    configuration = CloudConfiguration(env={"API_KEY": "abc", "TOKEN": "abcd"})
    assert secrets_of(configuration, extra=(SecretStr("workspace-auth"), None, "xyz")) == {"abcd", "workspace-auth"}


def test_redact_masks_longest_value_first() -> None:
    secrets = RunSecrets(values=["pass", "password123", "word"])
    assert [s.get_secret_value() for s in secrets.values] == ["password123", "pass", "word"]
    assert secrets.redact("a password123 b pass c word d") == "a *** b *** c *** d"


def test_redact_masks_each_line_of_a_multi_line_secret() -> None:
    key = "-----BEGIN KEY-----\nAAAAline-one\nBBBBline-two\n-----END KEY-----"
    secrets = RunSecrets(values=[key])
    assert secrets.redact(f"whole: {key}") == "whole: ***"
    assert secrets.redact("tail of it: BBBBline-two") == "tail of it: ***"


def test_redact_without_secrets_is_identity() -> None:
    assert RunSecrets().redact("nothing to hide") == "nothing to hide"


def test_values_never_show_in_repr_str_or_serialisation() -> None:
    secrets = RunSecrets(values=["very-secret-value"])
    request = SubmitRequest(
        flow_run_id="00000000-0000-0000-0000-000000000001", attempt_id="00000000-0000-0000-0000-000000000001", idempotency_key="k", workspace="w", pool="p",
        configuration=BaseJobConfiguration(), limits=RunLimits(max_runtime_s=1), secrets=secrets,
    )  # fmt: skip
    shown = [repr(secrets), str(secrets), repr(request), str(request), request.model_dump_json(), str(request.model_dump())]
    assert all("very-secret-value" not in text for text in shown)
    assert "secrets" not in request.model_dump()
    assert pickle.loads(pickle.dumps(secrets)).redact("x very-secret-value") == "x ***"
