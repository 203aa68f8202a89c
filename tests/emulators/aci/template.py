"""ARM template expressions: enough of the language for the container group templates workers send.

A string ``"[...]"`` is an expression (``"[[..."`` is a literal starting with
``[``). Supported: string/number literals, property access (``.location``)
and indexing, and the functions in ``FUNCTIONS`` (``parameters``,
``variables``, ``resourceGroup``, ``subscription``, ``deployment``,
``uniqueString``, ``concat``, ``format``, ``toLower``, ``toUpper``,
``string``, ``guid``, ``equals``, ``if``). Anything else is ARM's 400
``InvalidTemplate``. ``uniqueString`` is deterministic and 13 characters
long like ARM's, but not bit-for-bit ARM's hash.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import errors

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][\w]*)|(?P<sym>[(),.\[\]]))")
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def invalid_template(message: str) -> errors.ArmError:
    return errors.ArmError(400, "InvalidTemplate", f"Deployment template validation failed: '{message}'.")


@dataclass
class Scope:
    """What the functions see: parameter values, variables, and the deployment's context objects."""

    parameters: dict[str, Any]
    resource_group: dict[str, Any]
    subscription: dict[str, Any]
    deployment: dict[str, Any]
    variables: dict[str, Any] = field(default_factory=dict)


def unique_string(*parts: Any) -> str:
    digest = int.from_bytes(hashlib.sha256("-".join(map(str, parts)).encode()).digest()[:8], "big")
    return "".join(_BASE32[(digest >> (5 * i)) & 31] for i in range(13))


def _lookup(table: dict[str, Any], kind: str) -> Callable[[str], Any]:
    def get(name: str) -> Any:
        if name not in table:
            raise invalid_template(f"The template {kind} '{name}' is not found")
        return table[name]
    return get


def _functions(scope: Scope) -> dict[str, Callable[..., Any]]:
    return {
        "parameters": _lookup(scope.parameters, "parameter"),
        "variables": _lookup(scope.variables, "variable"),
        "resourcegroup": lambda: scope.resource_group,
        "subscription": lambda: scope.subscription,
        "deployment": lambda: scope.deployment,
        "uniquestring": unique_string,
        "concat": lambda *a: sum(a, []) if a and all(isinstance(x, list) for x in a) else "".join(map(str, a)),
        "format": lambda fmt, *a: re.sub(r"\{(\d+)\}", lambda m: str(a[int(m[1])]), fmt),
        "tolower": lambda s: str(s).lower(),
        "toupper": lambda s: str(s).upper(),
        "string": lambda v: v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v),
        "guid": lambda *a: str(uuid.uuid5(uuid.NAMESPACE_URL, "-".join(map(str, a)))),
        "equals": lambda a, b: a == b,
        "if": lambda cond, a, b: a if cond else b,
    }


class _Parser:
    def __init__(self, text: str, functions: dict[str, Callable[..., Any]]):
        self.tokens = self._tokenize(text)
        self.pos, self.functions, self.text = 0, functions, text

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens, pos = [], 0
        while pos < len(text):
            found = _TOKEN.match(text, pos)
            if not found or found.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise invalid_template(f"The language expression '{text}' is not valid")
            kind = found.lastgroup or "sym"
            tokens.append((kind, found[kind]))
            pos = found.end()
        return tokens

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, symbol: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (symbol is not None and token[1] != symbol):
            raise invalid_template(f"The language expression '{self.text}' is not valid")
        self.pos += 1
        return token

    def expression(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            result: Any = value[1:-1].replace("''", "'")
        elif kind == "num":
            result = float(value) if "." in value else int(value)
        elif kind == "name":
            result = self._call(value)
        else:
            raise invalid_template(f"The language expression '{self.text}' is not valid")
        return self._accessors(result)

    def _call(self, name: str) -> Any:
        function = self.functions.get(name.lower())
        if function is None:
            raise invalid_template(f"The template function '{name}' is not valid. Please see "
                                   "https://aka.ms/arm-functions for usage details")
        self.take("(")
        args = []
        while self.peek() and self.peek()[1] != ")":
            args.append(self.expression())
            if self.peek() and self.peek()[1] == ",":
                self.take(",")
        self.take(")")
        try:
            return function(*args)
        except TypeError:
            raise invalid_template(f"The template function '{name}' got the wrong number of arguments") from None

    def _accessors(self, value: Any) -> Any:
        while self.peek() and self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                value = _member(value, self.take()[1])
            else:
                value = _member(value, self.expression())
                self.take("]")
        return value


def _member(value: Any, key: Any) -> Any:
    try:
        if isinstance(value, dict):
            lowered = {str(k).lower(): v for k, v in value.items()}
            return lowered[str(key).lower()]
        return value[int(key)]
    except (KeyError, IndexError, ValueError, TypeError):
        raise invalid_template(f"The language expression property '{key}' doesn't exist") from None


def evaluate(value: Any, scope: Scope) -> Any:
    """Evaluate every expression string inside ``value`` (objects and arrays are walked)."""
    if isinstance(value, dict):
        return {k: evaluate(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, scope) for v in value]
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        if value.startswith("[["):
            return value[1:]
        parser = _Parser(value[1:-1], _functions(scope))
        result = parser.expression()
        if parser.peek() is not None:
            raise invalid_template(f"The language expression '{value}' is not valid")
        return result
    return value


def bind_parameters(template: dict[str, Any], given: dict[str, Any], scope: Scope) -> None:
    """Fill ``scope.parameters`` from the deployment's values and the template's defaults."""
    declared = template.get("parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise invalid_template(f"The template parameters '{', '.join(unknown)}' in the parameters file are not "
                               "valid; they are not present in the original template and can therefore not be "
                               "provided at deployment time")
    for name, spec in declared.items():
        if name in given:
            scope.parameters[name] = (given[name] or {}).get("value")
        elif "defaultValue" in spec:
            scope.parameters[name] = evaluate(spec["defaultValue"], scope)
        else:
            raise invalid_template(f"The value for the template parameter '{name}' is not provided")
        allowed = spec.get("allowedValues")
        if allowed is not None and scope.parameters[name] not in allowed:
            raise invalid_template(f"The provided value for the template parameter '{name}' is not valid")
    scope.variables.update(evaluate(template.get("variables") or {}, scope))
