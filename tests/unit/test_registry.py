"""The provider registry (providers/__init__.py, providers/registry.py): one line per cloud, the rest read
from the classes; lazy imports; clear errors; template-only clouds writable by pool create, refused by serve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from dispatcher.config import LoopConfig, ConfigError, PoolConfig, WorkspaceConfig, load_config
from dispatcher.service import ProviderSet
from dispatcher.startup.errors import StartupError
from dispatcher.startup.preflight import read_push_pool, served_provider_kind
from providers import CLOUDS, Cloud, registry
from providers.base import Provider
from providers.declaration import base_job_template
from providers.ecs import EcsJobConfiguration, EcsProvider, EcsSettings
from providers.local import LocalJobConfiguration, LocalProvider, LocalSettings
from providers.registry import Registry, _pool_types_in_source
from providers.managed import managed_base_job_template
from tests.unit.registry_fakes import GridJobConfiguration, GridTemplateOnly, GridVariables

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL = Cloud("local", "providers.local.provider:LocalProvider")
GRID = Cloud("grid", "tests.unit.registry_fakes:GridTemplateOnly", extra="grid")
NEEDS_SDK = Cloud("needs-sdk", "tests.unit.registry_fakes_needing_sdk:NeedsSdkProvider", extra="fake-sdk")
NEEDS_SDK_MESSAGE = ("provider 'needs-sdk' needs `pip install prefect-push-dispatcher[fake-sdk]` "
                     "(No module named 'fake_cloud_sdk_not_installed')")
WS = WorkspaceConfig(name="analytics", api_url="http://prefect:4200/api", pools=[PoolConfig(name="p")])


@pytest.fixture
def grid_registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The registry every caller uses, with the local provider and the template-only grid."""
    fake = Registry((LOCAL, GRID))
    monkeypatch.setattr(registry, "default", fake)
    return fake


def run_python(code: str, *modules_missing: str) -> str:
    """Run ``code`` in a fresh interpreter where ``modules_missing`` cannot be imported; its stdout."""
    hide = "".join(f"sys.modules[{name!r}] = None\n" for name in modules_missing)
    done = subprocess.run([sys.executable, "-c", f"import sys\n{hide}{code}"], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- derived from one line per cloud and the classes ------------------------------------------------


def test_the_real_lines_give_every_push_type_its_cloud():
    assert registry.kinds() == ["local", "ecs", "cloud-run", "aci"]
    assert registry.push_pool_types() == [
        "local:push", "ecs:push", "cloud-run-v2:push", "azure-container-instance:push", "prefect:managed"]
    assert [registry.kind_for_pool_type(t, "ecs") for t in registry.push_pool_types()] == [
        "local", "ecs", "cloud-run", "aci", "ecs"]
    assert registry.provider_class("local") is LocalProvider and registry.provider_class("ecs") is EcsProvider
    assert registry.settings_model("local") is LocalSettings and registry.settings_model("ecs") is EcsSettings
    assert registry.secret_fields("ecs") == ("aws_credentials",) and registry.secret_fields("local") == ()
    assert {"local", "ecs"} <= set(registry.servable_kinds())
    for kind in registry.kinds():
        declaration = registry.declaration(kind)
        assert declaration.kind == kind
        assert registry.is_servable(kind) == issubclass(declaration, Provider) == (kind in registry.servable_kinds())
        for pool_type in declaration.pool_types:
            assert registry.base_job_template(pool_type) == declaration.base_job_template()


def test_a_template_only_cloud_is_registered_by_its_line_alone(grid_registry):
    assert registry.kinds() == ["local", "grid"]
    assert registry.push_pool_types() == ["local:push", "grid:push", "prefect:managed"]
    assert registry.kind_for_pool_type("grid:push", "local") == "grid"
    assert registry.kind_for_pool_type("prefect:managed", "grid") == "grid"
    assert registry.base_job_template("grid:push") == base_job_template(GridJobConfiguration, GridVariables)
    # prefect:managed: Prefect Managed's variables over the named provider's job configuration
    assert registry.base_job_template("prefect:managed", "grid") == managed_base_job_template(GridTemplateOnly)
    assert registry.secret_fields("grid") == ("grid_token",) and registry.settings_model("grid") is None
    assert registry.servable_kinds() == ["local"] and not registry.is_servable("grid")
    with pytest.raises(registry.ProviderNotAvailable) as caught:
        registry.provider_class("grid")
    assert str(caught.value) == "provider 'grid' is not yet available (only its pool template has landed)"


def test_unknown_kinds_and_pool_types_name_what_is_known(grid_registry):
    with pytest.raises(registry.UnknownProvider) as kind:
        registry.declaration("gke")
    assert str(kind.value) == "no provider 'gke'; known: local, grid"
    with pytest.raises(registry.UnknownProvider):
        registry.kind_for_pool_type("prefect:managed", "gke")
    with pytest.raises(registry.UnknownPoolType) as pool_type:
        registry.kind_for_pool_type("process", "local")
    assert str(pool_type.value) == (
        "pool type 'process' is not a push type; known: local:push, grid:push, prefect:managed")
    assert not registry.is_push_pool_type("process") and registry.is_push_pool_type("prefect:managed")


def test_the_secret_fields_of_a_configuration_are_its_clouds_or_else_every_clouds(grid_registry):
    assert registry.secret_fields_of_configuration(GridJobConfiguration) == ("grid_token",)
    assert registry.secret_fields_of_configuration(LocalJobConfiguration) == ()

    class Unregistered(GridJobConfiguration.__base__):  # a BaseJobConfiguration no cloud declares
        pass

    assert registry.secret_fields_of_configuration(Unregistered) == ("grid_token",)
    assert Registry(CLOUDS).secret_fields_of_configuration(EcsJobConfiguration) == ("aws_credentials",)


# -- imported only when used ------------------------------------------------------------------------


def test_a_cloud_sdk_is_imported_only_for_its_own_cloud():
    code = """
import json
def loaded(*names):
    return sorted({m.split('.')[0] for m in sys.modules} & set(names))
import providers, providers.registry as registry
print(json.dumps(loaded('pydantic', 'prefect', 'botocore')))
registry.kinds(), registry.kind_for_pool_type('local:push', 'local'), registry.provider_class('local')
print(json.dumps(loaded('botocore', 'aiobotocore', 'google', 'azure')))
registry.base_job_template('cloud-run-v2:push')
print(json.dumps(loaded('botocore', 'aiobotocore', 'azure')))
registry.base_job_template('azure-container-instance:push')
print(json.dumps(loaded('botocore', 'aiobotocore')))
"""
    assert [json.loads(line) for line in run_python(code).splitlines()] == [[], [], [], []]


def test_the_pool_types_read_from_the_sources_are_the_classes_own():
    """The shortcut that keeps other clouds' SDKs unimported must agree with the imported classes."""
    for cloud in (*CLOUDS, GRID):
        assert _pool_types_in_source(cloud) == Registry((cloud,)).declaration(cloud.kind).pool_types, cloud.kind
    assert _pool_types_in_source(Cloud("grid", "tests.unit.registry_fakes:NOT_A_CLASS")) is None  # no class body
    assert _pool_types_in_source(Cloud("gone", "tests.unit.no_such_module:Gone")) is None


# -- errors -----------------------------------------------------------------------------------------


def test_a_missing_sdk_names_the_pip_extra_and_leaves_other_clouds_alone():
    clouds = Registry((LOCAL, NEEDS_SDK))
    with pytest.raises(registry.ProviderNotInstalled) as caught:
        clouds.declaration("needs-sdk")
    assert str(caught.value) == NEEDS_SDK_MESSAGE
    assert clouds.kind_for_pool_type("local:push", "local") == "local"
    assert clouds.push_pool_types() == ["local:push", "prefect:managed"]
    with pytest.raises(registry.ProviderNotInstalled) as unknown_type:  # needs-sdk may be the cloud that serves it
        clouds.kind_for_pool_type("needs:push", "local")
    assert str(unknown_type.value) == (
        f"pool type 'needs:push' is declared by no provider importable here; {NEEDS_SDK_MESSAGE}")


def test_without_the_aws_sdk_ecs_asks_for_the_aws_extra_and_the_other_clouds_work():
    code = """
from providers import registry
try:
    registry.provider_class('ecs')
except registry.ProviderNotInstalled as exc:
    print(exc)
print(registry.kind_for_pool_type('local:push', 'local'), registry.kind_for_pool_type('cloud-run-v2:push', 'local'))
"""
    missing_sdk, other_clouds = run_python(code, "botocore", "aiobotocore").splitlines()
    assert missing_sdk.startswith("provider 'ecs' needs `pip install prefect-push-dispatcher[aws]` (")
    assert "botocore" in missing_sdk and other_clouds == "local cloud-run"


@pytest.mark.parametrize(("cloud", "message"), [
    (Cloud("gone", "tests.unit.no_such_module:Gone"),
     "registry line 'gone': cannot import tests.unit.no_such_module (No module named 'tests.unit.no_such_module')"),
    (Cloud("grid", "tests.unit.registry_fakes:NoSuchClass"),
     "registry line 'grid': tests.unit.registry_fakes:NoSuchClass is not a CloudDeclaration class"),
    (Cloud("grid", "tests.unit.registry_fakes:NOT_A_CLASS"),
     "registry line 'grid': tests.unit.registry_fakes:NOT_A_CLASS is not a CloudDeclaration class"),
    (Cloud("gridiron", "tests.unit.registry_fakes:GridTemplateOnly"),
     "registry line 'gridiron': tests.unit.registry_fakes:GridTemplateOnly declares kind 'grid'"),
    (Cloud("unfinished", "tests.unit.registry_fakes:UnfinishedProvider"),
     "registry line 'unfinished': tests.unit.registry_fakes:UnfinishedProvider does not implement find, "
     "resources, status_many, stop, submit, validate"),
])  # fmt: skip
def test_a_broken_line_is_a_bug_not_a_missing_sdk(cloud: Cloud, message: str):
    with pytest.raises(registry.BrokenRegistryLine) as caught:
        Registry((cloud,)).declaration(cloud.kind)
    assert str(caught.value) == message


def test_kinds_and_pool_types_are_registered_once():
    with pytest.raises(registry.BrokenRegistryLine, match="kind 'local' is registered twice"):
        Registry((LOCAL, LOCAL))
    second = Cloud("second-local", "tests.unit.registry_fakes:SecondLocalTemplateOnly")
    with pytest.raises(registry.BrokenRegistryLine) as twice:
        Registry((LOCAL, second)).push_pool_types()
    assert str(twice.value) == "'second-local' declares pool type 'local:push', which 'local' serves"
    managed = Cloud("managed", "tests.unit.registry_fakes:ManagedTemplateOnly")
    with pytest.raises(registry.BrokenRegistryLine) as configured:
        Registry((managed,)).push_pool_types()
    assert str(configured.value) == "'managed' declares pool type 'prefect:managed', which the configuration serves"


def test_every_landed_provider_names_an_extra_of_the_package():
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for cloud in CLOUDS:
        if cloud.extra is not None and registry.is_servable(cloud.kind):
            assert cloud.extra in extras, f"{cloud.kind}: pip extra {cloud.extra!r} is not in pyproject.toml"


# -- template-only clouds: pool create writes them, serve and check refuse them ---------------------


async def test_serve_and_check_refuse_pools_of_a_template_only_cloud(grid_registry):
    pool = PoolConfig(name="g")
    grid_pool = SimpleNamespace(name="g", type="grid:push")
    api = SimpleNamespace(read_pool=lambda name: _answer(grid_pool))
    assert await read_push_pool(api, WS, "g") is grid_pool  # a push type: pool create can write it
    refusal = ("pool[analytics/g] has type {}: provider 'grid' is not yet available (only its pool template has "
               "landed); serve can run pools of providers local (pool create works for every type)")
    for work_pool, managed_provider in ((grid_pool, "local"), (SimpleNamespace(type="prefect:managed"), "grid")):
        with pytest.raises(StartupError) as caught:
            served_provider_kind(WS, pool, work_pool, managed_provider)
        assert caught.value.lines == [refusal.format(work_pool.type)]
    with pytest.raises(registry.ProviderNotAvailable):
        ProviderSet({}, LoopConfig()).get("grid")


def test_a_settings_section_for_a_template_only_cloud_is_refused(grid_registry, tmp_path: Path):
    path = tmp_path / "dispatcher.yaml"
    path.write_text(yaml.safe_dump({
        "workspaces": [{"name": "a", "api_url": "http://127.0.0.1:1/api", "pools": [{"name": "p"}]}],
        "managed_provider": "grid", "providers": {"grid": {"nodes": 2}, "gke": {}},
    }, sort_keys=False))  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}: providers.grid: provider 'grid' is not yet available (only its pool template has landed)",
        f"{path}: providers.gke: unknown provider 'gke'; known: local, grid",
    ]


async def _answer(value: object) -> object:
    return value
