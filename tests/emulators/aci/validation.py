"""Request bodies against the SDK's models, answered the way ARM answers a bad body.

Wrong JSON types and unknown members are ``InvalidRequestContent`` at once
(ARM cannot even deserialize the body). Missing required members are
reported after ACI's own rules had their say, because ACI answers some of
them with its own codes (``InvalidOsType``, ``ResourceRequestsNotSpecified``).
"""

from __future__ import annotations

from typing import Any

from ..kit.validation import TYPE, Issue
from . import errors
from .schema import REQUEST_CHECKER

_SHAPE = ("properties", "properties.containers")


def parse_issues(model: type, body: Any) -> list[Issue]:
    """Raise on what ARM cannot deserialize; return the remaining (constraint) issues."""
    issues = REQUEST_CHECKER(model, body)
    wrong = [i for i in issues if i.kind == TYPE]
    if wrong:
        raise errors.invalid_request_content(wrong[0].message)
    blocking = [i for i in issues if i.path in _SHAPE or _is_container_shape(i.path)]
    if blocking:
        raise errors.invalid_request_content(blocking[0].message)
    return issues


def raise_remaining(issues: list[Issue]) -> None:
    if issues:
        raise errors.invalid_request_content(issues[0].message)


def _is_container_shape(path: str) -> bool:
    """``properties.containers[0].name`` / ``.properties``: the rules cannot look at a container without them."""
    return path.startswith("properties.containers[") and path.split("]", 1)[1] in (".name", ".properties")
