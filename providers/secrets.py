"""The known secret values of one run, and masking them wherever run output is copied.

One pure function, :func:`run_secrets`, used for every provider. A value is secret when
it is

* a ``SecretStr`` / ``SecretBytes`` / ``Secret[...]`` anywhere in the resolved job
  configuration (credentials blocks resolved into it carry them),
* an ``env`` value whose *name* looks secret (:func:`name_looks_secret`; this covers
  the workspace's ``PREFECT_API_KEY`` / ``PREFECT_API_AUTH_STRING``),
* anything that came from a Prefect block or variable reference in the job variables
  (``{{ prefect.blocks.<type>.<name> }}``, ``{{ prefect.variables.<name> }}``,
  ``{"$ref": {"block_document_id": ...}}``): found by walking the template with values
  applied but not yet resolved, and taking the resolved value at the same path,
* given explicitly (the workspace's own API key or auth string).

Values shorter than 4 characters are ignored (see :mod:`providers.redaction`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any

from prefect.utilities.templating import PLACEHOLDER_CAPTURE_REGEX, PlaceholderType, find_placeholders
from pydantic import BaseModel, ConfigDict, Field, Secret, SecretBytes, SecretStr, field_validator

from providers.redaction import MASK, normalise, text_pattern

#: Name parts that make an environment variable's value secret (case-insensitive, plural too).
SECRET_NAME_WORDS = frozenset({"KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "AUTH", "CREDENTIAL", "PRIVATE"})
# SNAKE_CASE, kebab-case and camelCase parts: "dbPassword" -> db, Password; "APIKey" -> API, Key.
_NAME_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_REFERENCE_TYPES = (PlaceholderType.BLOCK_DOCUMENT, PlaceholderType.VARIABLE)
_SECRET_TYPES = (SecretStr, SecretBytes, Secret)
_MISSING = object()
KeyPath = tuple[str | int, ...]


class RunSecrets(BaseModel):
    """The secret values of one run, longest first; masks them in text. Never shows them."""

    model_config = ConfigDict(frozen=True)

    values: tuple[SecretStr, ...] = Field(
        default=(),
        description="Distinct secret values of at least 4 characters, longest first (also each line of multi-line values).",
    )

    @field_validator("values", mode="before")
    @classmethod
    def _normalise(cls, values: Iterable[str | SecretStr]) -> tuple[SecretStr, ...]:
        return tuple(SecretStr(v) for v in normalise(_reveal(v) for v in values))

    def revealed(self) -> list[str]:
        """The plain values, for handing to infrastructure that masks output itself (never log them)."""
        return [value.get_secret_value() for value in self.values]

    def redact(self, text: str) -> str:
        """``text`` with every known value replaced by ``***`` (a longer value wins over one it contains)."""
        return text if self._pattern is None else self._pattern.sub(MASK, text)

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        return text_pattern(self.revealed())

    def __repr__(self) -> str:
        return f"RunSecrets(<{len(self.values)} values>)"

    __str__ = __repr__


def run_secrets(configuration: BaseModel, applied_template: Any = None, extra: Iterable[Any] = ()) -> RunSecrets:
    """Every known secret value of a run (see the module docstring for the sources).

    ``applied_template`` is the job configuration template with the job variables applied
    but block and variable references not yet resolved; None when it is not known.
    """
    env = getattr(configuration, "env", None)
    found = [
        *secret_field_values(configuration),
        *secret_env_values(env if isinstance(env, dict) else {}),
        *referenced_values(applied_template, configuration),
        *(_reveal(value) for value in extra if value),
    ]
    return RunSecrets(values=found)


def name_looks_secret(name: str) -> bool:
    """True when a part of the name is KEY, SECRET, TOKEN, PASSWORD, PASSWD, AUTH, CREDENTIAL or PRIVATE (or a plural)."""
    for part in _NAME_PART.findall(name):
        part = part.upper()
        if part in SECRET_NAME_WORDS or (part.endswith("S") and part[:-1] in SECRET_NAME_WORDS):
            return True
    return False


def secret_env_values(env: dict[str, Any]) -> list[str]:
    return [str(value) for name, value in env.items() if value is not None and name_looks_secret(name)]


def secret_field_values(value: Any) -> list[str]:
    """Every SecretStr/SecretBytes/Secret value inside a model, dict or list (recursively)."""
    found: list[str] = []
    for node in _walk(value):
        if isinstance(node, _SECRET_TYPES):
            found.extend(_leaves(node))
    return found


def referenced_values(applied_template: Any, configuration: BaseModel) -> list[str]:
    """The resolved values at every path where the applied template holds a block or variable reference."""
    if applied_template is None:
        return []
    resolved = _plain(configuration)
    found: list[str] = []
    for path, template in reference_paths(applied_template):
        value = _at(resolved, path)
        if value is _MISSING:
            continue
        found.extend(_leaves(value) if template is None else _substituted(template, value))
    return found


def reference_paths(template: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str | None]]:
    """(path, template string) of every reference; the string is None for a ``$ref`` (take all below it)."""
    if isinstance(template, dict):
        ref = template.get("$ref")
        if isinstance(ref, dict) and ref.get("block_document_id"):
            yield path, None
            return
        for key, value in template.items():
            yield from reference_paths(value, (*path, key))
    elif isinstance(template, list):
        for index, value in enumerate(template):
            yield from reference_paths(value, (*path, index))
    elif isinstance(template, str) and any(p.type in _REFERENCE_TYPES for p in find_placeholders(template)):
        yield path, template


def _substituted(template: str, resolved: Any) -> list[str]:
    """What the references in ``template`` became in ``resolved`` (and ``resolved`` itself, which holds them)."""
    if not isinstance(resolved, str) or PLACEHOLDER_CAPTURE_REGEX.fullmatch(template):
        return _leaves(resolved)
    pattern, position = [], 0
    for match in PLACEHOLDER_CAPTURE_REGEX.finditer(template):
        pattern.append(re.escape(template[position : match.start()]))
        is_reference = any(p.type in _REFERENCE_TYPES for p in find_placeholders(match.group(0)))
        pattern.append("(.*?)" if is_reference else re.escape(match.group(0)))
        position = match.end()
    pattern.append(re.escape(template[position:]))
    parts = re.fullmatch("".join(pattern), resolved, re.DOTALL)
    return [resolved, *(parts.groups() if parts else ())]


def _walk(value: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """Every node below ``value``: model fields, dict values, list items; secrets are not opened."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    yield value
    if isinstance(value, BaseModel):
        children: Iterable[Any] = [getattr(value, name, None) for name in type(value).model_fields]
        children = [*children, *(value.__pydantic_extra__ or {}).values()]
    elif isinstance(value, dict):
        children = value.values()
    elif isinstance(value, (list, tuple, set, frozenset)):
        children = value
    else:
        return
    for child in children:
        yield from _walk(child, seen)


def _plain(value: Any) -> Any:
    """Models as dicts (by field name and alias), secrets revealed, so template paths can be followed."""
    if isinstance(value, _SECRET_TYPES):
        return _plain(value.get_secret_value())
    if isinstance(value, BaseModel):
        plain: dict[str, Any] = {}
        for name, info in type(value).model_fields.items():
            plain[name] = _plain(getattr(value, name, None))
            if info.alias:
                plain[info.alias] = plain[name]
        return plain
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _at(value: Any, path: KeyPath) -> Any:
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and isinstance(key, int) and key < len(value):
            value = value[key]
        else:
            return _MISSING
    return value


def _leaves(value: Any) -> list[str]:
    """Every scalar below ``value`` as text (booleans and None are not secrets)."""
    value = _plain(value)
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    if value is None or isinstance(value, bool):
        return []
    return [_reveal(value)]


def _reveal(value: Any) -> str:
    if isinstance(value, _SECRET_TYPES):
        value = value.get_secret_value()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
