"""Pydantic validation errors and unknown keys, as one-line problems an operator can act on.

``workspaces[0].pools[1].limits.max_vcpu: must be greater than 0, got -1``: the key
path, what is wrong, what is allowed, and the offending value unless it may be a
secret (a SecretStr field, a key named like a secret, anything from ``${VAR}``).
"""

from __future__ import annotations

import difflib
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError

from dispatcher.config.file import Loc, Problem, render_loc

#: Keys whose values are never echoed, whatever their type.
_SECRET_KEY = re.compile(r"(?i)(secret|password|passwd|token|api_key|auth|credential|dsn|sha256)")
_SHOULD = re.compile(r"^(Input|List|String|Value|Dictionary|Tuple|Set|Object|Data) should ")
#: Error types whose message already says everything; the value is added only when harmless.
_NO_VALUE = {"missing", "extra_forbidden"}
_MODEL_TYPE = re.compile(r"a valid dictionary or instance of \w+")
_MAX_SHOWN = 80
_WITHIN = {"pool": " within a workspace"}


def validation_problems(
    exc: ValidationError, root: type[BaseModel], prefix: Loc = (), hidden: set[Loc] = frozenset(),
    skip: set[Loc] = frozenset(),
) -> list[Problem]:
    """One problem per pydantic error of validating ``root`` at ``prefix``.

    ``hidden``: key paths whose values must not be shown; ``skip``: key paths already
    reported another way (an unset ``${VAR}`` leaves an empty string that fails again).
    """
    problems = []
    for error in exc.errors(include_url=False):
        loc = (*prefix, *error["loc"])
        if any(loc[: len(s)] == s for s in skip):
            continue
        message = _message(error, root, loc[len(prefix):], loc in hidden)
        problems.append(Problem(loc, message))
    return problems


def _message(error: dict[str, Any], root: type[BaseModel], loc: Loc, hidden: bool) -> str:
    if error["type"] == "extra_forbidden":
        return unknown_key_message(loc[-1], allowed_keys(root, loc[:-1]))
    text = error["msg"]
    for noise in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(noise)
    text = "is required" if error["type"] == "missing" else _SHOULD.sub("must ", text)
    text = _MODEL_TYPE.sub("a mapping", text)
    if error["type"] in _NO_VALUE:
        return text
    shown = _shown(error.get("input"), hidden or is_secret(root, loc))
    if shown is None or (error["type"] == "value_error" and shown in ("<hidden>", "a mapping", "a list")):
        return text
    return f"{text}, got {shown}"


def _shown(value: Any, hidden: bool) -> str | None:
    """How an offending value appears in a message (None: not at all)."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if hidden:
        return "<hidden>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        value = re.sub(r"(://[^/@\s]*:)[^/@\s]*@", r"\1<hidden>@", value)  # a password inside a URL
        return repr(value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "...")
    return None


def unknown_key_message(key: str | int, allowed: list[str]) -> str:
    text = f"unknown key {key!r}"
    close = difflib.get_close_matches(str(key), allowed, n=1)
    if close:
        text += f" (did you mean {close[0]!r}?)"
    return f"{text}; allowed: {', '.join(allowed)}" if allowed else text


def duplicate_names(items: Any, loc: Loc, what: str) -> list[Problem]:
    """Entries of a list whose ``name`` an earlier entry already has (checked on the file's data, so
    they are reported together with every other problem, not only once the entries are valid)."""
    first: dict[Any, int] = {}
    problems = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            where = render_loc((*loc, first[name]))
            problems.append(Problem((*loc, i, "name"), f"{what} {name!r} is already defined at {where}; "
                                                        f"{what} names must be unique{_WITHIN.get(what, '')}"))
        else:
            first[name] = i
    return problems


def api_token_problems(data: dict[str, Any], from_env: set[Loc]) -> list[Problem]:
    """Tokens written into the file (anyone who can read it could use them), repeated token names,
    and scopes naming workspaces the file does not define (a typo would silently grant nothing)."""
    api = data.get("api")
    if not isinstance(api, dict):
        return []
    problems = []
    if api.get("metrics_token") not in (None, "") and ("api", "metrics_token") not in from_env:
        problems.append(Problem(("api", "metrics_token"), _LITERAL_TOKEN))
    tokens = api.get("tokens")
    if not isinstance(tokens, list):
        return problems
    problems += duplicate_names(tokens, ("api", "tokens"), "token")
    known = {ws.get("name") for ws in data.get("workspaces") or [] if isinstance(ws, dict)}
    for i, token in enumerate(tokens):
        if not isinstance(token, dict):
            continue
        if token.get("token") is not None and ("api", "tokens", i, "token") not in from_env:
            problems.append(Problem(("api", "tokens", i, "token"), _LITERAL_TOKEN))
        scopes = token.get("workspaces")
        for j, name in enumerate(scopes if isinstance(scopes, list) else []):
            if isinstance(name, str) and name != "*" and name not in known:
                problems.append(Problem(("api", "tokens", i, "workspaces", j),
                                        f"unknown workspace {name!r}; defined: {', '.join(sorted(map(str, known)))} (or '*')"))
    return problems


_LITERAL_TOKEN = ("must be a ${VAR} reference, not the token itself (anyone who reads the file could use it); "
                  "or give its sha256 instead")


def file_order(data: Any, loc: Loc) -> tuple[int, ...]:
    """Sort key putting problems in the order their keys appear in the file (absent keys last)."""
    position = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            position.append(list(data).index(part))
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            position.append(part)
            data = data[part]
        else:
            position.append(1 << 30)
            data = None
    return tuple(position)


def unknown_keys(annotation: Any, value: Any, loc: Loc = ()) -> list[Problem]:
    """Keys of ``value`` that the model(s) in ``annotation`` do not declare, at any depth.

    Pydantic only refuses extra keys where a model says ``extra="forbid"``; provider
    settings and their nested models may not, and an ignored typo is worse than an error.
    """
    problems: list[Problem] = []
    models = _models_in(annotation)
    if isinstance(value, dict) and models:
        model = max(models, key=lambda m: len(set(value) & set(_fields(m))))
        fields = _fields(model)
        for key, item in value.items():
            if key not in fields:
                if model.model_config.get("extra") != "allow":
                    problems.append(Problem((*loc, key), unknown_key_message(key, list(fields))))
                continue
            problems += unknown_keys(fields[key], item, (*loc, key))
    elif isinstance(value, list):
        item_type = _container_arg(annotation, (list, tuple, set, frozenset), 0)
        for i, item in enumerate(value):
            problems += unknown_keys(item_type, item, (*loc, i))
    elif isinstance(value, dict):
        value_type = _container_arg(annotation, (dict,), 1)
        for key, item in value.items():
            problems += unknown_keys(value_type, item, (*loc, key))
    return problems


def allowed_keys(root: type[BaseModel], loc: Loc) -> list[str]:
    """Keys the model at ``loc`` (below ``root``) declares; [] when there is no single model there."""
    models = _models_in(annotation_at(root, loc))
    return list(_fields(models[0])) if len(models) == 1 else []


def is_secret(root: type[BaseModel], loc: Loc) -> bool:
    """A SecretStr field, or a key named like a secret."""
    if any(isinstance(part, str) and _SECRET_KEY.search(part) for part in loc):
        return True
    return _mentions(annotation_at(root, loc), (SecretStr, SecretBytes))


def annotation_at(root: type[BaseModel], loc: Loc) -> Any:
    """The declared type of the value at ``loc`` below ``root`` (None when it cannot be told)."""
    annotation: Any = root
    for part in loc:
        if isinstance(part, int):
            annotation = _container_arg(annotation, (list, tuple, set, frozenset), 0)
            continue
        models = [m for m in _models_in(annotation) if part in _fields(m)]
        if models:
            annotation = _fields(models[0])[part]
        else:
            annotation = _container_arg(annotation, (dict,), 1)
    return annotation


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """Key in the file -> declared type (aliases win, as in the file)."""
    return {info.alias or name: info.annotation for name, info in model.model_fields.items()}


def _members(annotation: Any) -> list[Any]:
    """``Optional[X]`` / ``X | Y`` / ``Annotated[X, ...]`` -> the plain types inside."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _members(arg)]
    return [annotation]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    return [m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


def _container_arg(annotation: Any, origins: tuple[type, ...], index: int) -> Any:
    for member in _members(annotation):
        args = get_args(member)
        if get_origin(member) in origins and len(args) > index:
            return args[index]
    return None


def _mentions(annotation: Any, wanted: tuple[type, ...]) -> bool:
    if annotation is None:
        return False
    if isinstance(annotation, type) and issubclass(annotation, wanted):
        return True
    return any(_mentions(arg, wanted) for arg in get_args(annotation) if arg is not annotation)
