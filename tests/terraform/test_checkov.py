"""checkov finds nothing in terraform/ that is not waived, and every waiver says why.

A waiver is an inline ``#checkov:skip=CKV_XXX:<reason>`` inside the resource it concerns.
checkov runs offline (``--skip-download``: no platform lookups) over the Terraform
framework only. It cannot share a virtualenv with this project (it pins boto3 to an
old release and its ``bc-python-hcl2`` overwrites ``python-hcl2``'s ``hcl2`` package), so it
is found as a command: ``$CHECKOV``, else ``checkov`` on PATH (``pipx install checkov``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "terraform"
CHECKOV = next((path for path in (os.environ.get("CHECKOV"), shutil.which("checkov"))
                if path and os.access(path, os.X_OK)), None)  # `make test` sets $CHECKOV to .venv-checkov's
PLANTED = "zz-planted"
"""A module scanned along with the real ones (same run, no extra time): its findings prove the scan can fail."""
PLANTED_TF = '''
resource "aws_security_group" "ssh_from_anywhere" {
  #checkov:skip=CKV_AWS_23
  name = "planted"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
'''


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not CHECKOV:
        pytest.skip("checkov is not installed (`make test` installs it in .venv-checkov; or `pipx install checkov`, or set "
                    "$CHECKOV); it cannot live in the "
                    "project's virtualenv")
    workdir = tmp_path_factory.mktemp("checkov")
    shutil.copytree(TERRAFORM_DIR, workdir / "terraform", ignore=shutil.ignore_patterns(".terraform*"))
    (workdir / "terraform" / PLANTED).mkdir()
    (workdir / "terraform" / PLANTED / "main.tf").write_text(PLANTED_TF, encoding="utf-8")
    done = subprocess.run([CHECKOV, "--directory", "terraform", "--framework", "terraform", "--compact",
                           "--skip-download", "--output", "json"],
                          cwd=workdir, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LOG_LEVEL": "ERROR"})
    assert done.returncode in (0, 1), f"checkov could not run:\n{done.stderr[-3000:]}"  # 1: failed checks
    report = json.loads(done.stdout)
    (report,) = report if isinstance(report, list) else [report]
    return report


def module_of(check: dict) -> str:
    return check["file_path"].split("/")[1]


def reason_of(check: dict) -> str:
    comment = (check["check_result"].get("suppress_comment") or "").strip()
    return "" if comment == "No comment provided" else comment  # checkov's text for a bare skip


def test_no_failed_check(scan: dict):
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}"
              for c in scan["results"]["failed_checks"] if module_of(c) != PLANTED]
    assert not failed, "checkov findings (fix them, or waive with #checkov:skip=CKV_ID:reason):\n" + "\n".join(failed)


def test_everything_was_scanned_and_parsed(scan: dict):
    assert scan["summary"]["parsing_errors"] == 0, scan["results"]["parsing_errors"]
    scanned = {module_of(c) for kind in ("passed_checks", "skipped_checks") for c in scan["results"][kind]}
    assert scanned >= {"aws-ecs", "gcp-cloud-run", "azure-aci"}


def test_every_waiver_gives_a_reason(scan: dict):
    skipped = [c for c in scan["results"]["skipped_checks"] if module_of(c) != PLANTED]
    unexplained = [f"{c['check_id']} {c['resource']}" for c in skipped if len(reason_of(c)) < 15]
    assert not unexplained, f"waivers without a reason: {unexplained}"


def test_the_planted_findings_are_caught(scan: dict):
    """SSH open to the world fails (CKV_AWS_24); a waiver without a reason is one the test above refuses."""
    planted_failed = {c["check_id"] for c in scan["results"]["failed_checks"] if module_of(c) == PLANTED}
    assert "CKV_AWS_24" in planted_failed
    (waiver,) = [c for c in scan["results"]["skipped_checks"] if module_of(c) == PLANTED]
    assert waiver["check_id"] == "CKV_AWS_23" and reason_of(waiver) == ""
