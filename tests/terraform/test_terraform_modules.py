"""Every module under terraform/ passes `terraform init`, `validate` and `terraform test` offline.

Providers come from a local filesystem mirror (``/opt/tf-plugins``, or ``$TF_PLUGIN_MIRROR``),
never from the registry: the test writes its own CLI configuration (TF_CLI_CONFIG_FILE; the
data dir, TF_DATA_DIR, in tmp too), and copies the module
into a tmp dir so neither ``.terraform/`` nor a lock file is ever written into the repo. A
module whose providers are not in the mirror is skipped, naming what is missing. The
modules' own ``tests/*.tftest.hcl`` plan with dummy credentials or a mocked provider, so
nothing needs a cloud account.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (pip install python-hcl2)")

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "terraform"
MODULES = sorted(p.name for p in TERRAFORM_DIR.iterdir() if (p / "versions.tf").is_file())
MIRROR = Path(os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
TERRAFORM = shutil.which("terraform")


def required_providers(module: str) -> list[str]:
    """``hashicorp/aws``... from the module's ``required_providers`` block."""
    with (TERRAFORM_DIR / module / "versions.tf").open(encoding="utf-8") as handle:
        parsed = hcl2.load(handle)
    sources = []
    for block in parsed["terraform"]:
        for providers in block.get("required_providers", []):
            for name, spec in providers.items():
                if not name.startswith("__"):  # python-hcl2 >= 7 adds __comments__, __is_block__
                    sources.append(str(spec["source"]).strip('"'))
    return sorted(sources)


def missing_providers(module: str) -> list[str]:
    """Providers of the module with no version unpacked in the mirror for this platform."""
    return [source for source in required_providers(module)
            if not any((MIRROR / "registry.terraform.io" / source).glob("*/linux_amd64"))]


@pytest.fixture
def terraform_env(tmp_path: Path) -> dict[str, str]:
    """CLI config with only the filesystem mirror, data dir in tmp. No plugin cache: from an unpacked
    mirror init symlinks the provider (675 MB for aws), a cache would copy it."""
    cli_config = tmp_path / "terraform.rc"
    cli_config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n',
                          encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_", "GOOGLE_", "ARM_"))}
    env.update(TF_CLI_CONFIG_FILE=str(cli_config), TF_DATA_DIR=str(tmp_path / "tf-data"), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1",
               TF_INPUT="0")
    return env


def terraform(env: dict[str, str], workdir: Path, *args: str, timeout: float = 180) -> str:
    done = subprocess.run([TERRAFORM, *args, "-no-color"], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"terraform {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_module_declares_its_providers():
    assert set(MODULES) >= {"aws-ecs", "gcp-cloud-run", "azure-aci"}
    assert required_providers("aws-ecs") == ["hashicorp/aws"]


@pytest.mark.parametrize("module", MODULES)
def test_module_inits_validates_and_passes_its_tests(module: str, tmp_path: Path, terraform_env: dict[str, str]):
    if TERRAFORM is None:
        pytest.skip("terraform is not installed (needs >= 1.7 for terraform test)")
    missing = missing_providers(module)
    if missing:
        pytest.skip(f"provider plugin {', '.join(missing)} is not installed in the local mirror {MIRROR} "
                    "(no registry access in tests)")
    workdir = tmp_path / module
    shutil.copytree(TERRAFORM_DIR / module, workdir, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    terraform(terraform_env, workdir, "fmt", "-check", "-recursive")
    terraform(terraform_env, workdir, "init", "-backend=false", "-input=false")
    terraform(terraform_env, workdir, "validate")
    if (workdir / "tests").is_dir():
        output = terraform(terraform_env, workdir, "test")
        assert "0 failed" in output and " passed" in output, output
    assert not (TERRAFORM_DIR / module / ".terraform").exists(), "terraform wrote into the repo"


def test_aws_module_accepts_aws_provider_majors_5_and_6():
    """5.100 is what the mirror has; 6.x is what new projects get. The module uses only attributes both have."""
    with (TERRAFORM_DIR / "aws-ecs" / "versions.tf").open(encoding="utf-8") as handle:
        parsed = hcl2.load(handle)
    (providers,) = parsed["terraform"][0]["required_providers"]
    constraint = str(providers["aws"]["version"]).strip('"')
    assert constraint == ">= 5.0.0, < 7.0.0"
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (TERRAFORM_DIR / "aws-ecs").glob("*.tf"))
    assert "aws_region.current.region" not in sources  # 6.x only
    assert "aws_region.current.name" not in sources  # deprecated in 6.x
