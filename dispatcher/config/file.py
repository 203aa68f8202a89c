"""Reading a configuration file: the file itself, its YAML, its ``${VAR}`` references.

Everything here reports problems as :class:`Problem` (a key path and a message)
instead of raising on the first one, so an operator sees every mistake of a file
in one go. Values that came from the environment are remembered by key path:
they may be secrets and are never echoed back.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The configuration cannot be used; ``problems`` holds one printable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong at one key path (``()``: the file as a whole)."""

    loc: Loc
    message: str

    def render(self, source: str) -> str:
        where = render_loc(self.loc)
        return f"{source}: {where}: {self.message}" if where else f"{source}: {self.message}"


def render_loc(loc: Loc) -> str:
    """``('workspaces', 0, 'pools', 1, 'name')`` -> ``workspaces[0].pools[1].name``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class ConfigSource:
    """A parsed file, its environment references expanded, with what the expansion found."""

    name: str
    data: Any
    from_env: set[Loc] = field(default_factory=set)  # values that came (partly) from ${VAR}: may be secrets
    unset: set[Loc] = field(default_factory=set)  # values whose ${VAR} is unset (already reported)
    problems: list[Problem] = field(default_factory=list)


def read_config_file(path: Path) -> ConfigSource:
    """Read, parse and expand ``path``. A file that cannot be read or parsed raises ConfigError at once."""
    name = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError([f"{name}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{name}: is a directory, not a configuration file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError([f"{name}: cannot be read: {reason}"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError([f"{name}: {_describe_yaml_error(exc)}"]) from None
    source = ConfigSource(name=name, data=None)
    source.data = _expand(data if data is not None else {}, (), source)
    return source


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a repeated key is almost always a mistake."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = key in first_line
            except TypeError:  # unhashable key: SafeLoader reports it below
                break
            if seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first_line[key] + 1})", key_node.start_mark
                )
            first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    """``line 3, column 5: invalid YAML: <problem>``; never the file's text (it may hold secrets)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        problem += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
    return f"{where}invalid YAML: {problem}"


def _expand(node: Any, loc: Loc, source: ConfigSource) -> Any:
    """Expand ${VAR} in string values only (comments and keys are left alone)."""
    if isinstance(node, str):
        return _expand_string(node, loc, source)
    if isinstance(node, list):
        return [_expand(item, (*loc, i), source) for i, item in enumerate(node)]
    if isinstance(node, dict):
        return {key: _expand(value, (*loc, key), source) for key, value in node.items()}
    return node


def _expand_string(text: str, loc: Loc, source: ConfigSource) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        source.from_env.add(loc)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        source.unset.add(loc)
        source.problems.append(Problem(
            loc, f"${{{name}}} is not set in the environment (set it, or write ${{{name}:-default}} for a default)"
        ))
        return ""

    return _ENV_REF.sub(replace, text)

