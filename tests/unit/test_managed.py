"""Prefect Managed on every provider: the pool's variables, EXTRA_PIP_PACKAGES, the allocation, the allow-list (pure)."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from typing import Any

import pytest
from prefect.client.schemas.objects import FlowRun

from dispatcher.config import Limits
from dispatcher.config.model import OFFICIAL_IMAGES
from dispatcher.policy.limits import managed_allocation
from providers import registry
from providers.base import RunLimits, SubmitRequest
from providers.errors import InvalidJobConfiguration
from providers.local import packages
from providers.managed import (
    ManagedAllocation,
    ManagedProvider,
    image_allowed,
    managed_configuration_class,
    normalized_packages,
    official_image,
)

KINDS = ["local", "ecs", "cloud-run", "aci"]
#: Prefect Cloud's managed pool: Prefect's base variables, image and pip_packages (see the README's research note).
MANAGED_VARIABLES = {"command", "env", "labels", "name", "image", "pip_packages"}
SEED_EXAMPLE = {"pip_packages": ["pandas", "prefect-aws"]}
PLACEHOLDER = re.compile(r"{{\s*([\w.]+)\s*}}")


def _provider_class(kind: str) -> Any:
    try:
        return registry.provider_class(kind)
    except registry.ProviderNotInstalled as exc:
        pytest.skip(f"provider {kind!r} or its SDK is not importable here: {exc}")


def _configuration(kind: str, values: dict[str, Any]) -> Any:
    """What the dispatcher builds for a run of a managed pool of ``kind`` (Prefect's resolution, then preparation)."""
    template = registry.base_job_template("prefect:managed", kind)
    cls = managed_configuration_class(_provider_class(kind).job_configuration)
    configuration = asyncio.run(cls.from_template_and_values(template, values, client=object()))
    configuration.prepare_for_flow_run(FlowRun(flow_id=uuid.uuid4(), name="managed-run"))
    return configuration


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(_placeholders(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_placeholders(v) for v in value))
    return set()


@pytest.mark.parametrize("kind", KINDS)
def test_every_provider_offers_prefect_managed_variables_and_nothing_else(kind):
    _provider_class(kind)
    template = registry.base_job_template("prefect:managed", kind)
    properties = template["variables"]["properties"]
    assert set(properties) == MANAGED_VARIABLES  # no cpu, memory, cluster...: users cannot ask for more
    assert properties["pip_packages"]["type"] == "array" and properties["pip_packages"]["title"] == "Pip Packages"
    assert properties["image"]["default"] == official_image()
    assert _placeholders(template["job_configuration"]) <= MANAGED_VARIABLES


def test_the_image_default_is_the_official_image_of_a_given_server_version():
    assert official_image("3.8.8", (3, 12)) == "prefecthq/prefect:3.8.8-python3.12"
    template = registry.base_job_template("prefect:managed", "local", "prefecthq/prefect:3.9.0-python3.12")
    assert template["variables"]["properties"]["image"]["default"] == "prefecthq/prefect:3.9.0-python3.12"


@pytest.mark.parametrize("kind", KINDS)
def test_the_seed_example_becomes_extra_pip_packages_with_the_managed_allocation(kind):
    configuration = _configuration(kind, dict(SEED_EXAMPLE, cpu=16, memory=65536))  # not variables: ignored
    assert configuration.env["EXTRA_PIP_PACKAGES"] == "pandas prefect-aws"
    assert configuration.pip_packages == ["pandas", "prefect-aws"]
    provider = _provider_class(kind)
    allocated = provider.managed_allocation(configuration, ManagedAllocation())
    expected = {
        "local": {"cpu": 4.0, "memory": 16384},
        "ecs": {"cpu": 4096, "memory": 16384, "ephemeral_storage": 128},
        "aci": {"cpu": 4.0, "memory": 16.0},
    }
    if kind == "cloud-run":
        limits = allocated.job_body["template"]["template"]["containers"][0]["resources"]["limits"]
        assert limits == {"cpu": "4", "memory": "16Gi"}
    else:
        assert {key: getattr(allocated, key) for key in expected[kind]} == expected[kind]
    assert configuration.image == official_image()


def test_the_operator_lowers_the_allocation_and_cannot_raise_it():
    assert managed_allocation(Limits()) == ManagedAllocation(vcpu=4, memory_mib=16384, ephemeral_storage_gib=128)
    lowered = managed_allocation(Limits(max_vcpu=2, max_memory_mib=8192, max_ephemeral_storage_gib=50))
    assert lowered == ManagedAllocation(vcpu=2, memory_mib=8192, ephemeral_storage_gib=50)
    assert managed_allocation(Limits(max_vcpu=16, max_memory_mib=131072)).vcpu == 4
    ecs = _provider_class("ecs").managed_allocation(_configuration("ecs", {}), ManagedAllocation(
        vcpu=1, memory_mib=4096, ephemeral_storage_gib=10))
    assert (ecs.cpu, ecs.memory, ecs.ephemeral_storage) == (1024, 4096, None)  # under Fargate's 21 GiB: its 20
    one_vcpu = _provider_class("ecs").managed_allocation(_configuration("ecs", {}), managed_allocation(Limits(max_vcpu=1.5)))
    assert (one_vcpu.cpu, one_vcpu.memory) == (1024, 8192)  # the most Fargate gives 1 vCPU, not an invalid pair
    _managed_provider("ecs").inner.validate(one_vcpu)


def test_pip_packages_are_normalised_and_unsafe_ones_refused():
    assert normalized_packages(["six", "pandas >= 2.0", "Six", "pandas[excel]==2.2.3", "Prefect_AWS"]) == [
        "pandas>=2.0", "pandas[excel]==2.2.3", "prefect-aws", "six"]
    for bad in ["six; python_version<'3.11'", "git+https://github.com/x/y", "six && rm -rf /", "./local", "$(id)"]:
        with pytest.raises(InvalidJobConfiguration, match="pip_packages"):
            normalized_packages([bad])


def test_the_allow_list_takes_official_images_only_by_default():
    assert image_allowed("prefecthq/prefect:3.8.8-python3.11", OFFICIAL_IMAGES)
    assert image_allowed("prefecthq/prefect-client:3-python3.12", OFFICIAL_IMAGES)
    for image in ["python:3.12", "evil/prefecthq/prefect:3", "prefecthq/prefect-evil:3", "prefecthq/prefect"]:
        assert not image_allowed(image, OFFICIAL_IMAGES), image


def _managed_provider(kind: str, allowed: tuple[str, ...] = OFFICIAL_IMAGES) -> ManagedProvider:
    cls = _provider_class(kind)
    inner = cls(cls.settings_model()) if cls.settings_model is not None else cls()
    return ManagedProvider(inner, ManagedAllocation(), allowed)


def test_an_image_outside_the_allow_list_is_refused_naming_image_and_list():
    provider = _managed_provider("local")
    configuration = _configuration("local", {"image": "python:3.12-slim"})
    with pytest.raises(InvalidJobConfiguration) as refused:
        provider.validate(configuration)
    assert "image='python:3.12-slim'" in refused.value.message
    assert "prefecthq/prefect:*" in refused.value.message and "allow-list" in refused.value.message
    provider.validate(_configuration("local", {}))  # the default image is allowed


def test_resources_are_the_allocation_whatever_the_configuration_says():
    provider = _managed_provider("local")
    request = provider.resources(_configuration("local", {}))
    assert (request.vcpu, request.memory_mib) == (4.0, 16384)


def test_cloud_run_managed_runs_keep_the_image_entrypoint():
    pytest.importorskip("google.cloud.run_v2", reason="the Cloud Run SDK builds the job")
    from providers.cloud_run import requests

    configuration = _configuration("cloud-run", SEED_EXAMPLE)
    allocated = _provider_class("cloud-run").managed_allocation(configuration, ManagedAllocation())
    job = requests.build_job(allocated)
    assert '"command"' not in job.body  # the container's command would replace the image's entrypoint
    request = SubmitRequest(flow_run_id=uuid.uuid4(), attempt_id=uuid.uuid4(), idempotency_key="k", workspace="w",
                            pool="p", configuration=allocated, limits=RunLimits(max_runtime_s=60))
    run = requests.build_run(allocated, request, job)
    assert '"args": ["prefect", "flow-run", "execute"]' in run.body.replace("\n", "").replace("  ", "")


def test_ecs_managed_task_keeps_the_image_entrypoint():
    pytest.importorskip("botocore", reason="the ECS provider needs botocore")
    from providers.ecs import requests

    allocated = _provider_class("ecs").managed_allocation(_configuration("ecs", SEED_EXAMPLE), ManagedAllocation())
    spec = requests.build_task_definition(allocated, "pool", "us-east-1")
    [container] = spec.request["containerDefinitions"]
    assert "entryPoint" not in container and container["image"] == official_image()
    assert (spec.request["cpu"], spec.request["memory"], spec.request["ephemeralStorage"]) == (
        "4096", "16384", {"sizeInGiB": 128})


def test_aci_managed_container_runs_the_official_entrypoint():
    from providers.aci.validation import command_line

    configuration = _configuration("aci", SEED_EXAMPLE)
    assert command_line(configuration)[:2] == ["/opt/prefect/entrypoint.sh", "prefect"]


def test_local_environments_are_keyed_by_package_set_and_python_and_run_the_command_with_their_python(tmp_path):
    key = packages.environment_key(["six", "cowsay"])
    assert key == packages.environment_key(["cowsay", "six"]) != packages.environment_key(["six"])
    assert packages.environment_key(["six"], (3, 11)) != packages.environment_key(["six"], (3, 12))
    env = tmp_path / key
    assert packages.command_in(env, ["prefect", "flow-run", "execute"]) == [
        str(env / "bin" / "python"), "-m", "prefect", "flow-run", "execute"]
    assert packages.command_in(env, ["/usr/bin/python3", "flow.py"]) == [str(env / "bin" / "python"), "flow.py"]
    assert packages.in_environment(["prefect", "flow-run", "execute"], [], tmp_path) == ["prefect", "flow-run", "execute"]
    wrapped = packages.in_environment(["prefect", "flow-run", "execute"], ["six"], tmp_path)
    assert wrapped[0] == sys.executable and wrapped[-4:] == ["--", "prefect", "flow-run", "execute"]


def test_a_pool_written_before_prefect_managed_variables_is_told_to_be_recreated():
    provider = _managed_provider("local")
    old_template = registry.declaration("local").base_job_template()  # the provider's own, no image variable
    configuration = asyncio.run(provider.job_configuration.from_template_and_values(old_template, {}, client=object()))
    with pytest.raises(InvalidJobConfiguration, match="--type prefect:managed --overwrite"):
        provider.validate(configuration)


def test_a_bad_requirement_fails_the_configuration_naming_it():
    with pytest.raises(InvalidJobConfiguration) as bad:
        _configuration("ecs", {"pip_packages": ["six", "pandas; python_version<'3.11'"]})
    assert bad.value.field == "pip_packages" and "pandas; python_version" in bad.value.message


async def test_pool_create_takes_the_image_of_the_servers_version_when_the_server_says():
    from dispatcher.prefect.pools import _server_version

    class Server:
        def __init__(self, answer: Any) -> None:
            self.answer = answer

        async def api_version(self) -> Any:
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    assert await _server_version(Server("3.9.1")) == "3.9.1"
    for answer in ({"detail": "Not Found"}, "not a version", OSError("down")):
        assert await _server_version(Server(answer)) is None  # then the installed Prefect's image
