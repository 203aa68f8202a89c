"""Checks JSON against the SDK's own msrest models (the kit's ``Checker`` for ARM).

The models' ``_attribute_map`` says which wire keys exist (flattened ones
such as ``properties.containers`` become nested objects) and their types;
``_validation`` says what is required, read-only or constrained. The SDK's
deserializer silently drops unknown keys, so the walk is ours: ARM's JSON
reader rejects a member it does not know ("Could not find member 'x' on
object of type 'Y'"), and so does this checker.

Two strictness levels. Requests get ARM's leniency (JSON.NET converts a
number to a string field and a numeric string to a number field).
Responses are the emulator's own output and must have the exact JSON type.
After the walk, the value is deserialized with the model and ``validate()``d
(required members, lengths, patterns) — the SDK's own rules.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from functools import lru_cache
from typing import Any

from azure.mgmt.containerinstance._serialization import Serializer

from ..kit.validation import CONSTRAINT, TYPE, Issue

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_SCALARS = {"str", "int", "long", "float", "bool", "iso-8601", "rfc-1123", "duration", "date", "object", "bytearray"}


def _split_key(key: str) -> list[str]:
    """``properties.containers`` -> ``["properties", "containers"]``; ``a\\.b`` stays one segment."""
    return [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", key)]


@lru_cache(maxsize=None)
def wire_tree(model: type) -> dict[str, Any]:
    """Nested ``{wire key: msrest type string | subtree}`` of a model."""
    tree: dict[str, Any] = {}
    for attr in model._attribute_map.values():
        *parents, leaf = _split_key(attr["key"])
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = attr["type"]
    return tree


class ModelChecker:
    """``checker(model_class, value) -> issues``; ``strict`` for responses."""

    def __init__(self, *, strict: bool):
        self.strict = strict

    def __call__(self, model: type, value: Any) -> list[Issue]:
        issues: list[Issue] = []
        _Walk(self.strict, sys.modules[model.__module__])._model_value(model, value, "", issues)
        if issues:
            return issues
        try:  # the SDK's own round trip, as the client will do it
            model.deserialize(value).serialize(keep_readonly=True)
        except Exception as exc:  # DeserializationError, SerializationError and friends
            return [Issue(TYPE, "", f"{model.__name__} does not deserialize: {exc}")]
        return []


class _Walk:
    """One walk; nested type names resolve in the root model's own module (ACI's, or Microsoft.Resources')."""

    def __init__(self, strict: bool, module: Any):
        self.strict, self._module = strict, module

    def _model_value(self, model: type, value: Any, path: str, issues: list[Issue]) -> None:
        before = len(issues)
        self._object(model, wire_tree(model), value, path, model.__name__, issues)
        if len(issues) == before:
            issues.extend(_constraint_issues(model, value, path))

    def _model(self, name: str) -> type | None:
        found = getattr(self._module, name, None)
        return found if isinstance(found, type) else None

    def _object(self, model: type, tree: dict[str, Any], value: Any, path: str, type_name: str,
                issues: list[Issue]) -> None:
        if not isinstance(value, dict):
            issues.append(Issue(TYPE, path, f"{path or 'body'}: expected an object of type '{type_name}'"))
            return
        for key, item in value.items():
            here = f"{path}.{key}" if path else key
            if key not in tree:
                issues.append(Issue(TYPE, here, f"Could not find member '{key}' on object of type '{type_name}'. "
                                                f"Path '{here}'"))
            elif isinstance(tree[key], dict):
                self._object(model, tree[key], item, here, f"{type_name}{key[:1].upper()}{key[1:]}", issues)
            elif item is not None:
                self._value(tree[key], item, here, issues)

    def _value(self, type_str: str, value: Any, path: str, issues: list[Issue]) -> None:
        if type_str.startswith("[") and type_str.endswith("]"):
            if not isinstance(value, list):
                issues.append(Issue(TYPE, path, f"{path}: expected an array"))
                return
            for i, item in enumerate(value):
                if item is not None:
                    self._value(type_str[1:-1], item, f"{path}[{i}]", issues)
        elif type_str.startswith("{") and type_str.endswith("}"):
            if not isinstance(value, dict):
                issues.append(Issue(TYPE, path, f"{path}: expected an object"))
                return
            for key, item in value.items():
                if item is not None:
                    self._value(type_str[1:-1], item, f"{path}.{key}", issues)
        elif type_str in _SCALARS:
            problem = self._scalar_problem(type_str, value)
            if problem:
                issues.append(Issue(TYPE, path, f"{problem}. Path '{path}'"))
        else:
            sub = self._model(type_str)
            if sub is None:
                issues.append(Issue(TYPE, path, f"{path}: the models define no type '{type_str}'"))
            else:
                self._model_value(sub, value, path, issues)

    def _scalar_problem(self, type_str: str, value: Any) -> str | None:
        if type_str == "object":
            return None
        if isinstance(value, (dict, list)):
            return f"Unexpected {'object' if isinstance(value, dict) else 'array'} where a {type_str} belongs"
        if type_str in ("int", "long", "float"):
            return self._number_problem(type_str, value)
        if type_str == "bool":
            ok = isinstance(value, bool) or (not self.strict and str(value).lower() in ("true", "false"))
            return None if ok else f"Could not convert {value!r} to boolean"
        if type_str in ("iso-8601", "date"):
            return self._date_problem(value)
        if self.strict and not isinstance(value, str):
            return f"Expected a string, got {value!r}"
        return None  # ARM turns numbers and booleans into strings

    def _number_problem(self, type_str: str, value: Any) -> str | None:
        if isinstance(value, bool) or (self.strict and not isinstance(value, (int, float))):
            return f"Could not convert {value!r} to {type_str}"
        if isinstance(value, str) and not _NUMBER.match(value.strip()):
            return f"Could not convert string to {'double' if type_str == 'float' else 'integer'}: {value}"
        if type_str in ("int", "long") and float(value) != int(float(value)):
            return f"Input string '{value}' is not a valid integer"
        return None

    @staticmethod
    def _date_problem(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"Could not convert {value!r} to DateTime"
        try:
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"Could not convert string to DateTime: {value}"
        return None


def _lookup(value: dict[str, Any], key: str) -> Any:
    for part in _split_key(key):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _constraint_issues(model: type, value: dict[str, Any], path: str) -> list[Issue]:
    """``_validation``'s required members and constraints (lengths, patterns, bounds), at this model's level."""
    issues = []
    for attr, rules in model._validation.items():
        key = model._attribute_map[attr]["key"]
        here = f"{path}.{key}" if path else key
        item = _lookup(value, key)
        if item is None:
            if rules.get("required"):
                issues.append(Issue(CONSTRAINT, here, f"Required property '{key}' not found in JSON. Path '{here}'"))
            continue
        for rule, bound in rules.items():
            check = Serializer.validation.get(rule)
            try:
                broken = check is not None and check(item, bound)
            except TypeError:  # a type the walk already let through (ARM's leniency): not this rule's business
                broken = False
            if broken:
                issues.append(Issue(CONSTRAINT, here, f"'{key}' breaks {rule}={bound!r}. Path '{here}'"))
    return issues


REQUEST_CHECKER = ModelChecker(strict=False)
RESPONSE_CHECKER = ModelChecker(strict=True)


def first_type_problem(issues: list[Issue]) -> Issue | None:
    return next((i for i in issues if i.kind == TYPE), None)
