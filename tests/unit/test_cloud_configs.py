"""The job configuration classes of Cloud Run and ACI (providers/cloud_run, providers/aci) read their pools'
templates with Prefect's semantics, as prefect-gcp's and prefect-azure's do; their secret fields are hidden."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from providers import registry
from providers.aci import AciJobConfiguration
from providers.cloud_run import CloudRunJobConfiguration
from providers.errors import invalid_configuration

# Whatever the lines name: the template-only declarations now, the providers once they land.
CLOUD_RUN, ACI = registry.declaration("cloud-run"), registry.declaration("aci")
NO_CLIENT = SimpleNamespace()  # nothing to resolve on a server: no block or variable placeholders
RESOURCE_GROUP, SUBSCRIPTION = "rg-prefect", "00000000-0000-0000-0000-000000000000"


def resolve(declaration: Any, values: dict[str, Any]) -> Any:
    template = declaration.base_job_template()
    return asyncio.run(declaration.job_configuration.from_template_and_values(template, values, client=NO_CLIENT))


def test_cloud_run_configuration_reads_its_template():
    configuration = resolve(CLOUD_RUN, {
        "env": {"EXTRA": "1"}, "credentials": {"project": "my-project"}, "cpu": "2000m", "timeout": 3600,
        "env_from_secrets": {"TOKEN": {"secret": "token", "version": "3"}},
    })  # fmt: skip
    assert isinstance(configuration, CloudRunJobConfiguration)
    assert configuration.env == {"EXTRA": "1"} and configuration.credentials.project == "my-project"
    assert configuration.region == "us-central1" and configuration.timeout == 3600 and not configuration.keep_job
    assert configuration.env_from_secrets["TOKEN"].version == "3"
    job = configuration.job_body
    assert job["launchStage"] == "BETA"
    container = job["template"]["template"]["containers"][0]
    assert container["image"] == "prefecthq/prefect:3-latest"
    assert container["resources"]["limits"] == {"cpu": "2000m", "memory": "512Mi"}


def test_aci_configuration_reads_its_template():
    configuration = resolve(ACI, {
        "resource_group_name": RESOURCE_GROUP, "subscription_id": SUBSCRIPTION, "memory": 2.0,
        "image_registry": {"registry_url": "myregistry.azurecr.io", "identity": "/subscriptions/x/identity"},
    })  # fmt: skip
    assert isinstance(configuration, AciJobConfiguration)
    assert configuration.resource_group_name == RESOURCE_GROUP
    assert isinstance(configuration.subscription_id, SecretStr) and SUBSCRIPTION not in repr(configuration)
    assert configuration.image_registry.identity == "/subscriptions/x/identity"
    container = configuration.arm_template["resources"][0]["properties"]["containers"][0]["properties"]
    assert container["resources"]["requests"] == {"cpu": 1.0, "memoryInGB": 2.0}
    assert configuration.entrypoint == "/opt/prefect/entrypoint.sh" and not configuration.keep_container_group


@pytest.mark.parametrize(("declaration", "values", "field"), [
    (CLOUD_RUN, {"credentials": "sa-key-f00d"}, "credentials"),
    (ACI, {"subscription_id": 4242424242}, "subscription_id"),
    (ACI, {"image_registry": "user:hunter2@registry"}, "image_registry"),
])  # fmt: skip
def test_values_of_secret_fields_are_not_quoted(declaration: Any, values: dict[str, Any], field: str):
    required = {"resource_group_name": RESOURCE_GROUP, "subscription_id": SUBSCRIPTION}
    base = required if declaration is ACI else {}
    with pytest.raises(ValidationError) as caught:
        declaration.job_configuration.model_validate({**base, **values, "job_body": {}, "arm_template": {}})
    hidden = invalid_configuration(caught.value, declaration.secret_fields)
    shown = invalid_configuration(caught.value, ())
    assert hidden.field.split(".")[0] == field and hidden.value == f"<{type(values[field]).__name__}>"
    assert shown.value == values[field]  # what a cloud that did not declare the field would quote
