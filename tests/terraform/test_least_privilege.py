"""Each Terraform module grants the dispatcher exactly the permissions its provider used in this session.

The emulators record the cloud permission of every call they serve (ECS IAM actions, Cloud
Run IAM permissions, ARM actions); ``tests/least_privilege.py`` collects them across the whole
session and runs these tests last. Nothing the provider called may be missing from the module;
anything granted but never called needs ``# not called by the provider: <reason>`` next to it.
When a cloud's provider suite did not run whole in this session (this file run alone), its
test skips and says which files to run with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.emulators.kit import CallLog
from tests.least_privilege import SETUP, PermissionRecord, calls_not_by_the_provider, kind_of

pytest.importorskip("hcl2", reason="python-hcl2 is not installed (pip install python-hcl2)")

from tests.terraform.grants import SOURCES, compare, granted, justification  # noqa: E402


@pytest.mark.least_privilege
@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_module_grants_exactly_what_the_provider_called(kind: str, provider_permissions: PermissionRecord):
    why_not = provider_permissions.incomplete(kind)
    if why_not:
        pytest.skip(why_not)
    called = provider_permissions.called(kind)
    assert called, f"the {kind} provider suite ran but no emulator recorded a permission"
    verdict = compare(called, granted(SOURCES[kind]))
    assert not verdict.missing, f"terraform/{SOURCES[kind].module} lacks permissions the provider called: " \
                                f"{sorted(verdict.missing)}"
    assert not verdict.unjustified, (
        f"terraform/{SOURCES[kind].module} grants permissions the provider never called, without "
        f"'# not called by the provider: <reason>' next to them: {sorted(verdict.unjustified)}")


PLANTED = '''
data "aws_iam_policy_document" "dispatcher" {
  statement {
    actions = [
      "ecs:RunTask",
      "ecs:StopTask",
      "ecs:DeleteCluster",
      # Checked by ECS itself while RunTask passes a role.
      # not called by the provider: ECS authorizes it on RunTask
      "iam:PassRole",
      "ec2:DescribeVpcs", # not called by the provider: fallback lookup
    ]
  }
  dynamic "statement" {
    for_each = [1]
    content {
      actions = ["logs:GetLogEvents"]
    }
  }
}

data "aws_iam_policy_document" "execution" {
  statement {
    actions = ["secretsmanager:GetSecretValue"]
  }
}
'''


def planted_grants(tmp_path: Path) -> dict[str, str | None]:
    tf = tmp_path / "main.tf"
    tf.write_text(PLANTED, encoding="utf-8")
    return granted(SOURCES["ecs"], [tf])


def test_the_grants_are_read_with_their_justifications(tmp_path: Path):
    assert planted_grants(tmp_path) == {
        "ecs:RunTask": None, "ecs:StopTask": None, "ecs:DeleteCluster": None, "logs:GetLogEvents": None,
        "iam:PassRole": "ECS authorizes it on RunTask", "ec2:DescribeVpcs": "fallback lookup",
    }  # only the dispatcher's document: the execution role's secret read is not the dispatcher's


def test_a_missing_and_an_unjustified_permission_fail_the_comparison(tmp_path: Path):
    called = {"ecs:RunTask", "ecs:StopTask", "logs:GetLogEvents", "ecs:DescribeTasks"}  # DescribeTasks: not granted
    verdict = compare(called, planted_grants(tmp_path))
    assert not verdict.ok
    assert verdict.missing == {"ecs:DescribeTasks"}
    assert verdict.unjustified == {"ecs:DeleteCluster"}
    assert verdict.justified == {"iam:PassRole": "ECS authorizes it on RunTask", "ec2:DescribeVpcs": "fallback lookup"}
    exact = compare({"ecs:RunTask", "ecs:StopTask", "ecs:DeleteCluster", "logs:GetLogEvents"}, planted_grants(tmp_path))
    assert exact.ok and not exact.missing


def test_a_comment_that_is_not_next_to_the_permission_does_not_justify_it():
    text = '# not called by the provider: about something else\n\nactions = [\n  "ecs:RunTask",\n]\n'
    assert justification(text, "ecs:RunTask") is None
    assert justification('  "ecs:RunTask", # not called by the provider:   \n', "ecs:RunTask") is None  # no reason


def test_permissions_are_told_apart_by_cloud():
    assert [kind_of(p) for p in ("ecs:RunTask", "iam:PassRole", "run.jobs.run", "iam.serviceAccounts.actAs",
                                 "Microsoft.ContainerInstance/containerGroups/write")] == \
           ["ecs", "ecs", "cloud-run", "cloud-run", "aci"]


def test_an_incomplete_session_is_reported_not_compared():
    record = PermissionRecord(collected={"tests/providers/test_ecs_specific.py::test_a"})
    assert "did not run in this session" in record.incomplete("ecs")
    complete = {"tests/providers/test_ecs_specific.py::test_a", "tests/e2e/test_ecs_end_to_end.py::test_b",
                "tests/providers/test_contract.py::test_c[ecs]", "tests/providers/test_contract.py::test_d[aci]"}
    record = PermissionRecord(collected=complete, passed=complete - {"tests/providers/test_contract.py::test_c[ecs]"})
    assert "did not pass" in record.incomplete("ecs")
    record.passed.add("tests/providers/test_contract.py::test_c[ecs]")
    assert record.incomplete("ecs") is None
    record.partial_files.add("tests/e2e/test_ecs_end_to_end.py")
    assert "only part of" in record.incomplete("ecs")


def test_calls_that_are_not_the_providers_are_not_counted():
    record = PermissionRecord()
    for test, permission in [("tests/providers/test_ecs_specific.py::t", "ecs:RunTask"),
                             ("tests/emulators_tests/test_ecs_emulator_faults.py::t", "ecs:ListClusters"),
                             ("tests/e2e/test_prefect_ecs_worker_on_emulator.py::t", "ec2:DescribeVpcs"),
                             ("tests/terraform/test_least_privilege.py::t", "ecs:ListServices"),
                             (SETUP + "tests/providers/test_ecs_specific.py::t", "ecs:CreateCluster"),
                             ("tests/e2e/test_ecs_end_to_end.py::t", "run.jobs.run")]:
        record.current = test
        record.add((permission,))
    assert record.called("ecs") == {"ecs:RunTask"} and record.called("cloud-run") == {"run.jobs.run"}


def test_every_emulator_reports_to_the_session_record_and_set_up_is_filed_apart(
        request: pytest.FixtureRequest, provider_permissions: PermissionRecord):
    log = CallLog()
    log.record_permission("ecs:ListServices")
    with calls_not_by_the_provider():
        log.record_permission("ecs:CreateCluster")
    log.reset()  # a test's reset_calls() does not erase the session's record
    assert provider_permissions.by_test[request.node.nodeid]["ecs:ListServices"] == 1
    assert provider_permissions.by_test[SETUP + request.node.nodeid]["ecs:CreateCluster"] == 1
