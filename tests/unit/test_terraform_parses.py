"""Static checks of the Terraform modules in terraform/ (no terraform binary, no cloud).

``terraform validate`` needs the providers downloaded; this parses every ``.tf``
file with python-hcl2 instead and checks what a reader would otherwise miss:
each module has its files, every ``var.x`` / ``local.x`` / resource or data
reference is declared in the module, every variable is used, every provider is
pinned in versions.tf, and outputs carrying secrets are marked sensitive.
Skipped when python-hcl2 is not installed (it is not a project dependency);
``terraform fmt -check`` runs too when a terraform binary is on PATH.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (pip install python-hcl2)")

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
MODULES = sorted(p.parent for p in TERRAFORM.glob("*/versions.tf"))
REQUIRED_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
PROVIDER_PREFIXES = ("aws", "google", "azurerm", "azuread", "time", "random")

VAR_REF = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
LOCAL_REF = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
RESOURCE_REF = re.compile(
    r"(?<![\w.])(data\.)?((?:" + "|".join(PROVIDER_PREFIXES) + r")_[a-z0-9_]+)\.([A-Za-z_][\w-]*)"
)
# Provider attributes that hold secrets: an output using one must be sensitive.
SECRET_ATTRIBUTE = re.compile(
    r"aws_iam_access_key\.\w+(\[\d+\])?\.secret\b"
    r"|google_service_account_key\.\w+(\[\d+\])?\.private_key\b"
    r"|azuread_application_password\.\w+(\[\d+\])?\.value\b"
)


def _name(key: str) -> str:
    """python-hcl2 >= 7 keeps the quotes of block labels; older versions strip them."""
    return key.strip('"')


def _parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle)


def _strings(value: Any) -> list[str]:
    """Every string in a parsed file (expressions are strings in python-hcl2), comments left out."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() if not str(k).startswith("__") for s in [*_strings(k), *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _blocks(parsed: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, body) of each one-label block (variable, output)."""
    return [(_name(label), body) for block in parsed.get(kind, []) for label, body in block.items()]


def _typed_blocks(parsed: dict[str, Any], kind: str) -> set[tuple[str, str]]:
    """(type, name) of each two-label block (resource, data)."""
    return {
        (_name(type_), _name(name))
        for block in parsed.get(kind, [])
        for type_, bodies in block.items()
        if not type_.startswith("__")
        for name in bodies
        if not name.startswith("__")
    }


class Module:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.files = {tf.name: _parse(tf) for tf in sorted(path.glob("*.tf"))}
        everything = list(self.files.values())
        self.variables = {name for parsed in everything for name, _ in _blocks(parsed, "variable")}
        self.outputs = dict(o for parsed in everything for o in _blocks(parsed, "output"))
        self.locals = {
            _name(k)
            for parsed in everything
            for block in parsed.get("locals", [])
            for k in block
            if not k.startswith("__")
        }
        self.resources = {r for parsed in everything for r in _typed_blocks(parsed, "resource")}
        self.data = {d for parsed in everything for d in _typed_blocks(parsed, "data")}
        self.text = [s for parsed in everything for s in _strings(parsed)]


@pytest.fixture(scope="module", params=MODULES, ids=lambda p: p.name)
def module(request: pytest.FixtureRequest) -> Module:
    return Module(request.param)


def test_modules_exist() -> None:
    assert {m.name for m in MODULES} >= {"aws-ecs", "gcp-cloud-run", "azure-aci"}
    assert (TERRAFORM / "README.md").is_file()


def test_every_tf_file_parses() -> None:
    files = sorted(TERRAFORM.rglob("*.tf"))
    assert files
    for tf in files:
        _parse(tf)  # raises on a syntax error


def test_module_files(module: Module) -> None:
    missing = [f for f in REQUIRED_FILES if not (module.path / f).is_file()]
    assert not missing, f"{module.path.name} lacks {missing}"
    for name, parsed in module.files.items():
        if name != "variables.tf":
            assert "variable" not in parsed, f"variables belong in variables.tf, not {name}"
        if name != "outputs.tf":
            assert "output" not in parsed, f"outputs belong in outputs.tf, not {name}"


def test_variables_declared_and_used(module: Module) -> None:
    used = {m for s in module.text for m in VAR_REF.findall(s)}
    assert not used - module.variables, f"undeclared variables: {sorted(used - module.variables)}"
    assert not module.variables - used, f"unused variables: {sorted(module.variables - used)}"


def test_locals_declared(module: Module) -> None:
    used = {m for s in module.text for m in LOCAL_REF.findall(s)}
    assert not used - module.locals, f"undeclared locals: {sorted(used - module.locals)}"


def test_resources_and_data_declared(module: Module) -> None:
    for text in module.text:
        for is_data, type_, name in RESOURCE_REF.findall(text):
            declared = module.data if is_data else module.resources
            assert (type_, name) in declared, f"{'data.' if is_data else ''}{type_}.{name} is not declared: {text}"


def test_descriptions(module: Module) -> None:
    for name, body in _blocks(module.files["variables.tf"], "variable"):
        assert body.get("description"), f"variable {name} has no description"
        assert "type" in body, f"variable {name} has no type"
    for name, body in module.outputs.items():
        assert body.get("description"), f"output {name} has no description"


def test_providers_pinned(module: Module) -> None:
    terraform = module.files["versions.tf"]["terraform"][0]
    assert terraform.get("required_version"), "required_version missing"
    required = {}
    for block in terraform["required_providers"]:
        required.update({_name(k): v for k, v in block.items() if not k.startswith("__")})
    used = {type_.split("_")[0] for type_, _ in module.resources | module.data}
    assert used <= set(required), f"providers used but not required: {sorted(used - set(required))}"
    for provider, spec in required.items():
        assert spec.get("source"), f"{provider} has no source"
        version = _name(spec.get("version", ""))
        assert ">=" in version and "<" in version.replace("<=", "<"), f"{provider} version not bounded: {version!r}"


def test_secret_outputs_are_sensitive(module: Module) -> None:
    for name, body in module.outputs.items():
        if any(SECRET_ATTRIBUTE.search(s) for s in _strings(body.get("value"))):
            assert body.get("sensitive") is True, f"output {name} exposes a secret without sensitive = true"


def test_terraform_fmt() -> None:
    """Canonical formatting (and HCL syntax, as terraform itself parses it); needs no providers."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
