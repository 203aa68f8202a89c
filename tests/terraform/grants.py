"""What a Terraform module grants the dispatcher, and the comparison with what the provider used.

A granted permission that the provider suite never needed must carry its reason right next to
it in the .tf, on its line or in the comment lines directly above it::

    "iam:PassRole", # not called by the provider: ECS checks it when RunTask passes a role

Without that comment it is an unjustified extra, and the least-privilege test fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

JUSTIFICATION = re.compile(r"#\s*not called by the provider:\s*(?P<reason>\S.*)$")
TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "terraform"


@dataclass(frozen=True)
class GrantSource:
    """Where a module grants the dispatcher's permissions: blocks of one type, the attribute listing them."""

    module: str
    block_kind: str  # "resource" or "data"
    block_type: str  # azurerm_role_definition, google_project_iam_custom_role, aws_iam_policy_document
    names: tuple[str, ...]  # which blocks of that type (the dispatcher's, not the flow runs' roles)
    attribute: str  # actions, permissions
    role_bindings: tuple[tuple[str, str], ...] = ()
    """(resource type, name) of bindings of a predefined role to the dispatcher; see PREDEFINED_ROLES."""


PREDEFINED_ROLES = {"roles/iam.serviceAccountUser": ("iam.serviceAccounts.actAs",)}
"""The permissions the provider may use from a predefined role the module binds. Only actAs is
meant from serviceAccountUser (bound on the runtime service account alone); the role's other
permissions (get/list of that account) are outside this comparison."""

SOURCES = {
    "ecs": GrantSource("aws-ecs", "data", "aws_iam_policy_document", ("dispatcher",), "actions"),
    "cloud-run": GrantSource("gcp-cloud-run", "resource", "google_project_iam_custom_role", ("dispatcher",),
                             "permissions",
                             (("google_service_account_iam_member", "dispatcher_acts_as_runtime"),)),
    "aci": GrantSource("azure-aci", "resource", "azurerm_role_definition", ("dispatcher", "attach"), "actions"),
}


@dataclass
class Verdict:
    missing: set[str] = field(default_factory=set)
    """Called by the provider, not granted: a real deployment would fail."""
    unjustified: set[str] = field(default_factory=set)
    """Granted, never called, no reason given next to it."""
    justified: dict[str, str] = field(default_factory=dict)
    """Granted, never called, with the reason from the .tf."""

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unjustified


def _strip(value: Any) -> Any:
    return value.strip('"') if isinstance(value, str) else value  # python-hcl2 >= 7 keeps the quotes


def _values_of(body: Any, attribute: str) -> Iterator[str]:
    """Every string listed under ``attribute`` anywhere in a block (statements, dynamic contents)."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == attribute and isinstance(value, list):
                yield from (_strip(v) for v in value if isinstance(v, str))
            else:
                yield from _values_of(value, attribute)
    elif isinstance(body, list):
        for value in body:
            yield from _values_of(value, attribute)


def _blocks(parsed: dict, block_kind: str, block_type: str) -> Iterator[tuple[str, dict]]:
    for block in parsed.get(block_kind, []):
        for kind, bodies in block.items():
            if _strip(kind) == block_type:
                yield from ((_strip(name), body) for name, body in bodies.items())


def granted(source: GrantSource, files: list[Path] | None = None) -> dict[str, str | None]:
    """Permission -> the justification next to it (None if there is none), over the module's .tf files."""
    files = files if files is not None else sorted((TERRAFORM_DIR / source.module).glob("*.tf"))
    found: dict[str, str | None] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        parsed = hcl2.loads(text)
        for name, body in _blocks(parsed, source.block_kind, source.block_type):
            if name in source.names:
                for permission in _values_of(body, source.attribute):
                    found[permission] = justification(text, permission)
        for binding_type, binding_name in source.role_bindings:
            for name, body in _blocks(parsed, "resource", binding_type):
                if name == binding_name:
                    role = _strip(body["role"])
                    for permission in PREDEFINED_ROLES[role]:
                        found[permission] = justification(text, role)
    return found


def justification(text: str, permission: str) -> str | None:
    """The reason given on the permission's line, or in the comment lines right above it."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if f'"{permission}"' not in line:
            continue
        same_line = JUSTIFICATION.search(line)
        if same_line:
            return same_line["reason"].strip()
        above = index - 1
        while above >= 0 and lines[above].strip().startswith("#"):
            match = JUSTIFICATION.search(lines[above])
            if match:
                return match["reason"].strip()
            above -= 1
    return None


def compare(called: set[str], grants: dict[str, str | None]) -> Verdict:
    verdict = Verdict(missing=called - set(grants))
    for permission, reason in grants.items():
        if permission in called:
            continue
        if reason:
            verdict.justified[permission] = reason
        else:
            verdict.unjustified.add(permission)
    return verdict
