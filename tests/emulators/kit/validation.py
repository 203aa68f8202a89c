"""The cloud-neutral half of validation: issues, a per-cloud checker, and the response guard.

Every emulator checks requests and its own responses against the schema the
real SDK ships (botocore shapes for AWS, proto-plus messages for Cloud Run,
msrest models for ARM). Only the walk over that schema is per cloud: a
*checker* is any callable ``checker(schema, value) -> list[Issue]``.

A request that breaks its schema is the client's fault: the protocol turns
the issues into its cloud's validation error. A *response* that breaks its
schema is an emulator bug: ``ResponseGuard`` records it in ``errors`` (which
tests assert empty) and the protocol answers a 500 instead of something the
real service never would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TYPE = "type"
CONSTRAINT = "constraint"


@dataclass(frozen=True)
class Issue:
    """One way a value breaks its schema; ``kind`` is ``TYPE`` (wrong JSON type) or ``CONSTRAINT``."""

    kind: str
    path: str
    message: str


Checker = Callable[[Any, Any], list[Issue]]
"""``checker(schema, value)``: every issue of ``value`` against ``schema`` (``[]`` if it fits)."""


def summary(issues: list[Issue]) -> str:
    return "; ".join(issue.message for issue in issues)


class ResponseGuard:
    """Checks what the emulator is about to answer against the operation's output schema."""

    def __init__(self, checker: Checker, errors: list[str], *, enabled: bool = True,
                 describe: Callable[[list[Issue]], str] = summary):
        self._checker, self._errors, self.enabled, self._describe = checker, errors, enabled, describe

    def broken(self, op: str, schema: Any, value: Any) -> bool:
        """True, with the bug recorded in ``errors``, if ``value`` breaks ``schema``."""
        if not self.enabled:
            return False
        issues = self._checker(schema, value)
        if issues:
            self._errors.append(f"{op} response breaks its output shape: {self._describe(issues)}")
        return bool(issues)
