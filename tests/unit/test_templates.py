"""Base job templates of every push pool type the dispatcher writes.

For each pool type in the registry (``providers.registry.push_pool_types()``)
whose template can be produced here (templates of providers whose cloud SDK is not
importable are skipped with the reason; template-only clouds never are), the
checks a Prefect server makes when the pool is created, and more:

* every ``{{ placeholder }}`` in ``job_configuration`` (nested values, keys, and
  placeholders embedded in longer strings) names a property of ``variables``;
* ``variables`` is a valid JSON schema (jsonschema's Draft 2020-12 meta-schema, and
  Prefect's own ``is_valid_schema``);
* every default validates against its property, and all of them together pass
  the validation Prefect's server runs on a new pool's defaults.

Then, for the templates of Cloud Run v2 and ACI (written before their providers), that the
variable names include Prefect's own: against the reference list in
``shared/reference/prefect-cloud-workers.md`` (always) and against prefect-gcp /
prefect-azure themselves when they are installed (skipped otherwise).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import importlib
import importlib.util
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prefect.workers.base import BaseVariables

from providers import registry
from providers.aci.config import AciJobConfiguration, AciVariables
from providers.cloud_run.config import CloudRunJobConfiguration, CloudRunVariables
from providers.declaration import base_job_template

# Anything between double braces, so malformed names are caught too (Prefect's own
# regex only matches [\w.\-\[\]$]+ and would silently leave "{{ a b }}" in place).
PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")

BLOCK_REF = {"$ref": {"block_document_id": "1b9e3c8c-6d7d-4b57-9a4c-6a1f7d0c2f3e"}}

CLOUD_RUN_V2_TEMPLATE = functools.partial(base_job_template, CloudRunJobConfiguration, CloudRunVariables)
ACI_TEMPLATE = functools.partial(base_job_template, AciJobConfiguration, AciVariables)

#: Pool types written without a provider -> (template function, variables model).
TEMPLATE_ONLY_CASES = {
    "cloud-run-v2:push": (CLOUD_RUN_V2_TEMPLATE, CloudRunVariables),
    "azure-container-instance:push": (ACI_TEMPLATE, AciVariables),
}

#: Values for the variables Prefect requires (they have no default).
REQUIRED_SAMPLES = {"resource_group_name": "rg-prefect", "subscription_id": "00000000-0000-0000-0000-000000000000"}

BASE_VARIABLES = sorted(BaseVariables.model_fields)  # name, env, labels, command

#: Prefect's own job variable names, from shared/reference/prefect-cloud-workers.md:
#: (b) "2. Configuration (G CloudRunWorkerV2Variables)" and (c) "2. Configuration"
#: (prefect-azure AzureContainerVariables), plus BaseVariables' fields. ``arm_template``
#: is listed there too but is a job-configuration field, not a variable, in prefect-azure.
REFERENCE_VARIABLES = {
    "cloud-run-v2:push": {
        "credentials", "region", "image", "args", "env_from_secrets", "prefect_api_key_secret",
        "prefect_api_auth_string_secret", "cloudsql_instances", "keep_job", "launch_stage", "max_retries",
        "timeout", "vpc_connector_name", "service_account_name", "cpu", "memory",
    },
    "azure-container-instance:push": {
        "resource_group_name", "subscription_id", "image", "entrypoint", "image_registry", "identities",
        "subnet_ids", "dns_servers", "cpu", "memory", "gpu_count", "gpu_sku", "stream_output",
        "task_start_timeout_seconds", "task_watch_poll_interval", "keep_container_group", "aci_credentials",
    },
}  # fmt: skip

#: Where Prefect's worker classes live, for the comparison when they are installed.
PREFECT_WORKERS = {
    "cloud-run-v2:push": (
        "prefect_gcp",
        "prefect_gcp.workers.cloud_run_v2",
        "CloudRunWorkerV2",
        "CloudRunWorkerJobV2Configuration",
    ),
    "azure-container-instance:push": (
        "prefect_azure",
        "prefect_azure.workers.container_instance",
        "AzureContainerWorker",
        "AzureContainerJobConfiguration",
    ),
}


def _cases() -> list[Any]:
    cases = []
    for pool_type in registry.push_pool_types():
        managed_providers = sorted(registry.kinds()) if pool_type == registry.MANAGED_POOL_TYPE else [None]
        for managed in managed_providers:
            case_id = pool_type if managed is None else f"{pool_type}[{managed}]"
            cases.append(pytest.param((pool_type, managed or "local"), id=case_id))
    return cases


def _produce(pool_type: str, managed_provider: str) -> dict[str, Any]:
    kind = registry.kind_for_pool_type(pool_type, managed_provider)
    try:
        registry.declaration(kind)
    except registry.ProviderNotInstalled as exc:
        pytest.skip(f"provider {kind!r} or its cloud SDK is not importable here: {exc}")
    # Template-only kinds are never skipped: they must be producible without any cloud SDK.
    return registry.base_job_template(pool_type, managed_provider)


@pytest.fixture(params=_cases())
def template(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _produce(*request.param)


def _placeholders(value: Any) -> set[str]:
    """Names of all placeholders in a nested template (dict keys included)."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(_placeholders(k) | _placeholders(v) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return set().union(*(_placeholders(v) for v in value))
    return set()


def _defaults(variables: dict[str, Any]) -> dict[str, Any]:
    return {name: prop["default"] for name, prop in variables["properties"].items() if "default" in prop}


# -- every template --------------------------------------------------------------------


def test_template_shape(template: dict[str, Any]) -> None:
    assert set(template) == {"job_configuration", "variables"}
    assert template["variables"]["type"] == "object"
    assert template["variables"]["properties"]
    assert set(BASE_VARIABLES) <= set(template["variables"]["properties"])
    assert json.loads(json.dumps(template)) == template  # sent to Prefect as JSON


def test_placeholders_name_variables(template: dict[str, Any]) -> None:
    found = _placeholders(template["job_configuration"])
    assert found, "a job configuration without placeholders ignores every job variable"
    undeclared = found - set(template["variables"]["properties"])
    assert not undeclared, f"placeholders without a variable: {sorted(undeclared)}"


def test_prefect_server_accepts_template(template: dict[str, Any]) -> None:
    from prefect.server.schemas.actions import validate_base_job_template

    validate_base_job_template(copy.deepcopy(template))


def test_variables_is_valid_json_schema(template: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (a Prefect dependency) is not installed")
    from prefect.utilities.schema_tools.validation import is_valid_schema

    jsonschema.Draft202012Validator.check_schema(template["variables"])
    is_valid_schema(template["variables"], preprocess=False)  # raises ValueError when invalid
    is_valid_schema(template["variables"], preprocess=True)


def test_each_default_validates(template: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (a Prefect dependency) is not installed")
    schema = {key: value for key, value in template["variables"].items() if key != "required"}
    validator = jsonschema.Draft202012Validator(schema)
    for name, default in _defaults(template["variables"]).items():
        errors = [e.message for e in validator.iter_errors({name: default})]
        assert not errors, f"default of {name!r} ({default!r}) is invalid: {errors}"


def test_defaults_pass_prefect_pool_validation(template: dict[str, Any]) -> None:
    """What a Prefect server checks when the pool is created (validate_job_variable_defaults_for_work_pool)."""
    from prefect.utilities.schema_tools.validation import validate

    variables = template["variables"]
    for name, default in _defaults(variables).items():
        errors = validate({name: default}, variables, preprocess=True, ignore_required=True)
        assert not errors, f"default of {name!r} refused: {[e.message for e in errors]}"
    errors = validate(
        _defaults(variables), variables, preprocess=True, ignore_required=True, allow_none_with_default=True
    )
    assert not errors, [e.message for e in errors]


# -- templates written without a provider ----------------------------------------------


@pytest.mark.parametrize("pool_type", sorted(TEMPLATE_ONLY_CASES))
def test_template_functions_are_registered(pool_type: str) -> None:
    template_function, _ = TEMPLATE_ONLY_CASES[pool_type]
    assert registry.base_job_template(pool_type) == template_function()
    first = template_function()
    first["variables"]["properties"].clear()
    assert template_function()["variables"]["properties"], "each call must return a fresh template"


@pytest.mark.parametrize("pool_type", sorted(TEMPLATE_ONLY_CASES))
def test_variable_names_include_reference_list(pool_type: str) -> None:
    names = set(TEMPLATE_ONLY_CASES[pool_type][0]()["variables"]["properties"])
    missing = (REFERENCE_VARIABLES[pool_type] | set(BASE_VARIABLES)) - names
    assert not missing, f"Prefect job variables missing from the {pool_type} template: {sorted(missing)}"


@pytest.mark.parametrize("pool_type", sorted(TEMPLATE_ONLY_CASES))
def test_defaults_and_required_values_fit_variables_model(pool_type: str) -> None:
    template_function, variables_model = TEMPLATE_ONLY_CASES[pool_type]
    variables = template_function()["variables"]
    values = {**_defaults(variables), **{k: REQUIRED_SAMPLES[k] for k in variables.get("required", [])}}
    variables_model.model_validate(values)
    # A block reference and a literal block both pass the server's job-variable validation.
    from prefect.utilities.schema_tools.validation import validate

    credentials = "credentials" if "credentials" in variables["properties"] else "aci_credentials"
    for value in (BLOCK_REF, {}):
        errors = validate(
            {credentials: value}, variables, preprocess=True, ignore_required=True, allow_none_with_default=True
        )
        assert not errors, f"{credentials}={value!r} refused: {[e.message for e in errors]}"


def test_cloud_run_constraints() -> None:
    """Cloud Run's task timeout cap (168 h) and prefect-gcp's memory format, per the reference notes."""
    properties = CLOUD_RUN_V2_TEMPLATE()["variables"]["properties"]
    assert properties["timeout"]["exclusiveMinimum"] == 0 and properties["timeout"]["maximum"] == 604800
    memory = re.compile(properties["memory"]["pattern"])
    assert memory.fullmatch("512Mi") and memory.fullmatch("2G") and not memory.fullmatch("512")
    assert properties["cpu"]["default"] == "1000m"
    definition = CLOUD_RUN_V2_TEMPLATE()["variables"]["definitions"]["GcpCredentials"]
    assert definition["block_type_slug"] == "gcp-credentials"


def test_aci_block_slugs() -> None:
    definitions = ACI_TEMPLATE()["variables"]["definitions"]
    assert definitions["AzureContainerInstanceCredentials"]["block_type_slug"] == "azure-container-instance-credentials"
    assert definitions["DockerRegistryCredentials"]["block_type_slug"] == "docker-registry-credentials"
    assert ACI_TEMPLATE()["variables"]["required"] == ["resource_group_name", "subscription_id"]


def test_no_prefect_integration_imported() -> None:
    """The templates must not need prefect-gcp / prefect-azure (nor any cloud SDK)."""
    for module in ("providers.blocks", "providers.declaration", *(
        f"providers.{package}{module}" for package in ("cloud_run", "aci")
        for module in ("", ".config", ".credentials")
    )):
        source = importlib.util.find_spec(module).origin
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
        for forbidden in ("prefect_gcp", "prefect_azure", "prefect_docker", "google.", "azure."):
            assert f"import {forbidden}" not in text and f"from {forbidden}" not in text, (module, forbidden)


# -- against Prefect's integrations themselves, when installed -------------------------


def _prefect_worker(pool_type: str) -> tuple[Any, Any]:
    package, module, worker, configuration = PREFECT_WORKERS[pool_type]
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:  # not installed, or installed but broken: either way nothing to compare with
        pytest.skip(f"{package} is not importable ({exc}): names are checked against the reference list only")
    return getattr(loaded, worker), getattr(loaded, configuration)


def _strip_docs(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_docs(v) for k, v in value.items() if k not in ("title", "description", "examples")}
    if isinstance(value, list):
        return [_strip_docs(v) for v in value]
    return value


@pytest.mark.parametrize("pool_type", sorted(TEMPLATE_ONLY_CASES))
def test_matches_prefect_integration(pool_type: str) -> None:
    worker, _ = _prefect_worker(pool_type)
    theirs = worker.get_default_base_job_template()
    ours = TEMPLATE_ONLY_CASES[pool_type][0]()
    their_properties, our_properties = theirs["variables"]["properties"], ours["variables"]["properties"]
    assert set(their_properties) <= set(our_properties), sorted(set(their_properties) - set(our_properties))
    assert set(theirs["variables"].get("required", [])) == set(ours["variables"].get("required", []))
    for name, prop in their_properties.items():
        expected = _strip_docs(prop)
        if pool_type == "azure-container-instance:push" and name == "image":
            expected["default"] = our_properties[name]["default"]  # theirs: the worker's own image (default_factory)
        assert _strip_docs(our_properties[name]) == expected, name
    # The job configuration uses at least every placeholder and key Prefect's does.
    assert set(theirs["job_configuration"]) <= set(ours["job_configuration"])
    assert _placeholders(theirs["job_configuration"]) <= _placeholders(ours["job_configuration"])


@pytest.mark.parametrize("pool_type", sorted(TEMPLATE_ONLY_CASES))
def test_prefect_job_configuration_reads_template(
    pool_type: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job configuration class with Prefect's semantics resolves our template."""
    _, configuration_class = _prefect_worker(pool_type)
    # prefect-gcp's credentials block loads Application Default Credentials when built:
    # give it an offline (never used) authorized-user file instead of the machine's.
    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps({"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"})
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    template = TEMPLATE_ONLY_CASES[pool_type][0]()
    values = {k: REQUIRED_SAMPLES[k] for k in template["variables"].get("required", [])}
    values["env"] = {"EXTRA": "1"}
    if pool_type == "cloud-run-v2:push":
        values["credentials"] = {"project": "my-project"}  # a resolved block; without a project it asks ADC
    no_client = SimpleNamespace()  # nothing to resolve on a server: no block or variable placeholders
    configuration = asyncio.run(configuration_class.from_template_and_values(template, values, client=no_client))
    assert configuration.env == {"EXTRA": "1"}
    if pool_type == "cloud-run-v2:push":
        container = configuration.job_body["template"]["template"]["containers"][0]
        assert container["image"] == "prefecthq/prefect:3-latest"
        assert container["resources"]["limits"] == {"cpu": "1000m", "memory": "512Mi"}
        assert configuration.region == "us-central1" and configuration.timeout == 600
        assert configuration.project == "my-project"
    else:
        container = configuration.arm_template["resources"][0]["properties"]["containers"][0]["properties"]
        assert container["resources"]["requests"] == {"cpu": 1.0, "memoryInGB": 1.0}
        assert configuration.resource_group_name == "rg-prefect"
