"""The AWS checker for the kit's validation harness: JSON values against botocore's service model.

Real AWS validates every request against the same Smithy model botocore ships:
a JSON value of the wrong type is a ``SerializationException``; a missing
required member, an enum miss, a length/range/pattern violation is a
validation error whose message reads
``1 validation error detected: Value 'x' at 'tags.1.member.key' failed to
satisfy constraint: Member must ...``. We also reject members the model does
not know (AWS would mostly ignore them) because they always mean a bug in the
caller. The same walker checks the emulator's own responses against output
shapes (through the kit's ``ResponseGuard``), so a response botocore could
not have come from AWS is caught. ``find_issues`` is the kit's ``Checker``.
"""

from __future__ import annotations

import json
import math
from functools import cache
from typing import Any

from botocore.model import Shape

from ..kit.validation import CONSTRAINT, TYPE, Issue

try:  # the ``regex`` module understands the \p{L} classes AWS patterns use
    import regex as _regex
except ImportError:  # pragma: no cover - fall back to an approximation
    _regex = None
import re

_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_PY_TYPES = {
    "string": (str,),
    "blob": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "timestamp": (int, float),  # JSON 1.1 timestamps are epoch seconds
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
}


@cache
def _compile(pattern: str):
    if _regex is not None:
        return _regex.compile(pattern)
    approx = pattern.replace(r"\p{L}", r"\w").replace(r"\p{N}", r"\w").replace(r"\p{Z}", r"\s")
    return re.compile(approx)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _shown(shape: Shape, value: Any) -> str:
    """How Coral quotes a value in a validation message (sensitive ones are hidden)."""
    if value is None:
        return "Value null"
    if shape.metadata.get("sensitive"):
        return "Value"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return f"Value '{text}'"


class _Walker:
    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def constraint(self, shape: Shape, value: Any, path: str, rule: str) -> None:
        msg = f"{_shown(shape, value)} at '{path}' failed to satisfy constraint: {rule}"
        self.issues.append(Issue(CONSTRAINT, path, msg))

    def check(self, shape: Shape, value: Any, path: str) -> None:
        if shape.type_name == "structure" and shape.metadata.get("document"):
            return  # free-form JSON document
        expected = _PY_TYPES.get(shape.type_name)
        wrong_type = expected is not None and (
            not isinstance(value, expected)
            or (isinstance(value, bool) and shape.type_name != "boolean")
        )
        if wrong_type:
            got = type(value).__name__
            msg = f"Unexpected {got} at '{path or '$'}': {shape.name} must be a {shape.type_name}"
            self.issues.append(Issue(TYPE, path, msg))
            return
        getattr(self, "_" + shape.type_name, lambda *a: None)(shape, value, path)

    def _structure(self, shape: Shape, value: dict, path: str) -> None:
        for name, item in value.items():
            member = shape.members.get(name)
            sub = _join(path, name)
            if member is None:
                msg = f"Unknown member '{sub}': {shape.name} has no member named '{name}'"
                self.issues.append(Issue(CONSTRAINT, sub, msg))
            elif item is not None:  # JSON null means "absent" to AWS
                self.check(member, item, sub)
        for name in shape.required_members:
            if value.get(name) is None:
                self.constraint(shape.members[name], None, _join(path, name), "Member must not be null")
        if shape.metadata.get("union"):
            present = [n for n, v in value.items() if v is not None]
            if len(present) != 1:
                msg = f"Union '{path}' ({shape.name}) must have exactly one member set, got {present}"
                self.issues.append(Issue(CONSTRAINT, path, msg))

    def _list(self, shape: Shape, value: list, path: str) -> None:
        self._length(shape, value, path)
        for i, item in enumerate(value, start=1):
            sub = f"{path}.{i}.member"
            if item is None:
                self.constraint(shape.member, None, sub, "Member must not be null")
            else:
                self.check(shape.member, item, sub)

    def _map(self, shape: Shape, value: dict, path: str) -> None:
        self._length(shape, value, path)
        for key, item in value.items():
            self.check(shape.key, key, _join(path, "key"))
            if item is not None:
                self.check(shape.value, item, _join(path, str(key)))

    def _string(self, shape: Shape, value: str, path: str) -> None:
        if shape.enum and value not in shape.enum:
            self.constraint(shape, value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        self._length(shape, value, path)
        pattern = shape.metadata.get("pattern")
        if pattern and not _compile(pattern).fullmatch(value):
            self.constraint(shape, value, path, f"Member must satisfy regular expression pattern: {pattern}")

    def _integer(self, shape: Shape, value: int, path: str) -> None:
        lo, hi = _INT_RANGES[shape.type_name]
        if not lo <= value <= hi:
            msg = f"Number {value} at '{path}' is out of range for {shape.type_name}"
            self.issues.append(Issue(TYPE, path, msg))
            return
        self._range(shape, value, path)

    _long = _integer

    def _double(self, shape: Shape, value: float, path: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            self.issues.append(Issue(TYPE, path, f"Non-finite number at '{path}'"))
            return
        self._range(shape, value, path)

    _float = _double

    def _length(self, shape: Shape, value: Any, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and len(value) < low:
            self.constraint(shape, value, path, f"Member must have length greater than or equal to {low}")
        if high is not None and len(value) > high:
            self.constraint(shape, value, path, f"Member must have length less than or equal to {high}")

    def _range(self, shape: Shape, value: float, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.constraint(shape, value, path, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self.constraint(shape, value, path, f"Member must have value less than or equal to {high}")


def find_issues(shape: Shape | None, value: Any) -> list[Issue]:
    """Every way ``value`` breaks ``shape`` (an operation with no shape takes ``{}``)."""
    if shape is None:
        return [] if value in ({}, None) else [Issue(CONSTRAINT, "", "Operation takes no input")]
    walker = _Walker()
    walker.check(shape, value, "")
    return walker.issues


def validation_message(issues: list[Issue]) -> str:
    """Coral's summary line: ``2 validation errors detected: a; b``."""
    noun = "error" if len(issues) == 1 else "errors"
    return f"{len(issues)} validation {noun} detected: " + "; ".join(i.message for i in issues)
