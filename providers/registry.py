"""The provider registry's API, derived from the lines in :data:`providers.CLOUDS` and the classes they name.

Each line gives a kind, the class that declares the cloud and the pip extra of
its SDK; pool types, settings model, secret-bearing fields and base job template
are read from the class (:class:`providers.declaration.CloudDeclaration`). A class
is imported the first time its cloud is needed, never when this module is:

* ``kinds()`` imports nothing;
* ``kind_for_pool_type(t)`` and ``is_push_pool_type(t)`` import the class that
  declares ``t`` (found by reading the classes' sources first, so no other cloud's
  SDK is imported; a cloud whose SDK is missing is named if none declares ``t``);
* ``push_pool_types()`` and ``servable_kinds()`` import every class whose SDK is
  installed: for help texts and error messages.

Callers use the module functions; they answer from :data:`default`, which tests
may replace with a ``Registry`` of their own lines.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from providers import CLOUDS, Cloud
from providers.declaration import CloudDeclaration

if TYPE_CHECKING:
    from pydantic import BaseModel

    from providers.base import Provider

#: Prefect Managed's pool type: no class declares it; the configuration names its provider.
MANAGED_POOL_TYPE = "prefect:managed"
DISTRIBUTION = "prefect-push-dispatcher"


class RegistryError(Exception):
    """A kind or pool type the registry cannot serve; the message says why, for an operator."""


class UnknownProvider(RegistryError, LookupError):
    def __init__(self, kind: str, known: Sequence[str]) -> None:
        super().__init__(f"no provider {kind!r}; known: {', '.join(known)}")


class UnknownPoolType(RegistryError, LookupError):
    def __init__(self, pool_type: str, known: Sequence[str]) -> None:
        super().__init__(f"pool type {pool_type!r} is not a push type; known: {', '.join(known)}")


class ProviderNotInstalled(RegistryError):
    """A cloud's class cannot be imported because a package it needs (its SDK) is not installed."""

    @classmethod
    def of(cls, cloud: Cloud, cause: ImportError) -> ProviderNotInstalled:
        install = f"`pip install {DISTRIBUTION}[{cloud.extra}]`" if cloud.extra else "a package that is not installed"
        return cls(f"provider {cloud.kind!r} needs {install} ({cause})")


class ProviderNotAvailable(RegistryError):
    """The cloud's line names a template-only declaration: its provider has not landed yet."""

    def __init__(self, declaration: type[CloudDeclaration]) -> None:
        super().__init__(f"provider {declaration.kind!r} is not yet available (only its pool template has landed)")
        self.kind = declaration.kind


class BrokenRegistryLine(RegistryError):
    """A registry line or the class it names is wrong: a bug to fix in the code, not in the configuration."""


class Registry:
    """Registered clouds, their classes imported on first use and kept."""

    def __init__(self, clouds: Sequence[Cloud]) -> None:
        self._clouds: dict[str, Cloud] = {}
        for cloud in clouds:
            if cloud.kind in self._clouds:
                raise BrokenRegistryLine(f"kind {cloud.kind!r} is registered twice")
            self._clouds[cloud.kind] = cloud
        self._loaded: dict[str, type[CloudDeclaration]] = {}
        self._not_installed: dict[str, ProviderNotInstalled] = {}

    def kinds(self) -> list[str]:
        """Every registered kind, servable or not, in line order. Imports nothing."""
        return list(self._clouds)

    def declaration(self, kind: str) -> type[CloudDeclaration]:
        """The class the line of ``kind`` names: a provider class or a template-only declaration."""
        if kind in self._loaded:
            return self._loaded[kind]
        if kind in self._not_installed:
            raise self._not_installed[kind]
        if kind not in self._clouds:
            raise UnknownProvider(kind, self.kinds())
        try:
            self._loaded[kind] = _load(self._clouds[kind])
        except ProviderNotInstalled as exc:
            self._not_installed[kind] = exc
            raise
        return self._loaded[kind]

    def is_servable(self, kind: str) -> bool:
        """Has the provider of ``kind`` landed (False: only its pool template has)?"""
        from providers.base import Provider  # imports Prefect: only once a class is loaded anyway

        return issubclass(self.declaration(kind), Provider)

    def provider_class(self, kind: str) -> type[Provider]:
        """The provider class of ``kind``; ProviderNotAvailable while only its pool template has landed."""
        declaration = self.declaration(kind)
        if not self.is_servable(kind):
            raise ProviderNotAvailable(declaration)
        return declaration  # type: ignore[return-value]

    def servable_kinds(self) -> list[str]:
        """Kinds whose provider has landed and can be imported here."""
        return [kind for kind, _ in self._importable() if self.is_servable(kind)]

    def settings_model(self, kind: str) -> type[BaseModel] | None:
        return self.declaration(kind).settings_model

    def secret_fields(self, kind: str) -> tuple[str, ...]:
        return self.declaration(kind).secret_fields

    def kind_for_pool_type(self, pool_type: str, managed_provider: str) -> str:
        """The kind that runs pools of ``pool_type`` (for ``prefect:managed``: ``managed_provider``)."""
        if pool_type == MANAGED_POOL_TYPE:
            if managed_provider not in self._clouds:
                raise UnknownProvider(managed_provider, self.kinds())
            return managed_provider
        kind = self._declaring_kind(pool_type)
        if kind is None:
            raise UnknownPoolType(pool_type, self.push_pool_types())
        return kind

    def is_push_pool_type(self, pool_type: str) -> bool:
        """Does a registered cloud (or Prefect Managed) serve ``pool_type``?"""
        return pool_type == MANAGED_POOL_TYPE or self._declaring_kind(pool_type) is not None

    def push_pool_types(self) -> list[str]:
        """Every pool type a registered class declares, in line order, then ``prefect:managed``."""
        declared_by: dict[str, str] = {}
        for kind, declaration in self._importable():
            for pool_type in declaration.pool_types:
                if pool_type in declared_by or pool_type == MANAGED_POOL_TYPE:
                    owner = repr(declared_by[pool_type]) if pool_type in declared_by else "the configuration"
                    raise BrokenRegistryLine(f"{kind!r} declares pool type {pool_type!r}, which {owner} serves")
                declared_by[pool_type] = kind
        return [*declared_by, MANAGED_POOL_TYPE]

    def base_job_template(self, pool_type: str, managed_provider: str, image: str | None = None) -> dict[str, Any]:
        """The base job template ``dispatcher pool create`` writes for ``pool_type``, landed provider or not.

        ``prefect:managed``: Prefect Managed's variables over ``managed_provider``'s job configuration,
        ``image`` (default: the installed Prefect's official image) as the image variable's default.
        """
        declaration = self.declaration(self.kind_for_pool_type(pool_type, managed_provider))
        if pool_type == MANAGED_POOL_TYPE:
            from providers.managed import managed_base_job_template  # imports Prefect: only when asked

            return managed_base_job_template(declaration, image)
        return declaration.base_job_template()

    def secret_fields_of_configuration(self, configuration_class: type) -> tuple[str, ...]:
        """The secret fields of the cloud whose job configuration this is.

        A class no registered cloud declares (a test's, a cloud in the making) gets
        every registered cloud's: hiding too much is the safe side.
        """
        for _, declaration in self._importable(self._search_order()):
            if issubclass(configuration_class, declaration.job_configuration):
                return declaration.secret_fields
        return tuple(sorted({field for _, d in self._importable() for field in d.secret_fields}))

    def _declaring_kind(self, pool_type: str) -> str | None:
        """The kind whose class declares ``pool_type``, importing no class whose source shows it does not."""
        for kind in self._search_order():
            declared = None if kind in self._loaded else _pool_types_in_source(self._clouds[kind])
            if declared is not None and pool_type not in declared:
                continue  # importing it would import its SDK for nothing
            try:
                declaration = self.declaration(kind)
            except ProviderNotInstalled:
                continue
            if pool_type in declaration.pool_types:
                return kind
        if self._not_installed:  # one of them may be the cloud that declares it
            reasons = "; ".join(str(exc) for exc in self._not_installed.values())
            raise ProviderNotInstalled(f"pool type {pool_type!r} is declared by no provider importable here; {reasons}")
        return None

    def _search_order(self) -> list[str]:
        """Kinds whose class is imported already first (a lookup may end there), then the others in line order."""
        return sorted(self.kinds(), key=lambda kind: kind not in self._loaded)

    def _importable(self, kinds: Sequence[str] | None = None) -> Iterator[tuple[str, type[CloudDeclaration]]]:
        """The classes of ``kinds`` (default: all, in line order), skipping clouds without their SDK."""
        for kind in self.kinds() if kinds is None else kinds:
            try:
                yield kind, self.declaration(kind)
            except ProviderNotInstalled:
                continue


def _pool_types_in_source(cloud: Cloud) -> tuple[str, ...] | None:
    """The literal ``pool_types`` in the body of the line's class, read from its source without importing it.

    Finding which cloud serves a pool type must not import every other cloud's SDK.
    Only a shortcut: a cloud found this way is imported and checked, and None (no
    source, no literal in the class's own body) means "import it to know". A test
    keeps it equal to the classes' attributes.
    """
    module_name, _, class_name = cloud.declared_by.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
        source = spec.loader.get_source(module_name) if spec and spec.loader else None  # type: ignore[attr-defined]
    except (ImportError, AttributeError, ValueError):
        return None
    classes = [node for node in ast.parse(source or "").body
               if isinstance(node, ast.ClassDef) and node.name == class_name]  # fmt: skip
    for statement in reversed(classes[-1].body if classes else []):  # the last assignment wins, as in Python
        if _assigned_name(statement) == "pool_types":
            try:
                return tuple(ast.literal_eval(statement.value))  # type: ignore[attr-defined]
            except (ValueError, TypeError, SyntaxError):
                return None
    return None


def _assigned_name(statement: ast.stmt) -> str | None:
    """``x`` for ``x = ...`` and ``x: T = ...``; None for anything else."""
    if isinstance(statement, ast.AnnAssign) and statement.value is not None:
        target: ast.expr = statement.target
    elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
    else:
        return None
    return target.id if isinstance(target, ast.Name) else None


def _load(cloud: Cloud) -> type[CloudDeclaration]:
    module_name, _, class_name = cloud.declared_by.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        # A missing module of our own code base (the line's package) is a bug; anything else is a missing SDK.
        if (exc.name or "").split(".")[0] == module_name.split(".")[0]:
            raise BrokenRegistryLine(f"registry line {cloud.kind!r}: cannot import {module_name} ({exc})") from exc
        raise ProviderNotInstalled.of(cloud, exc) from exc
    declaration = getattr(module, class_name, None)
    if not (isinstance(declaration, type) and issubclass(declaration, CloudDeclaration)):
        raise BrokenRegistryLine(f"registry line {cloud.kind!r}: {cloud.declared_by} is not a CloudDeclaration class")
    if getattr(declaration, "kind", None) != cloud.kind:
        raise BrokenRegistryLine(
            f"registry line {cloud.kind!r}: {cloud.declared_by} declares kind {getattr(declaration, 'kind', None)!r}"
        )
    if inspect.isabstract(declaration):
        missing = ", ".join(sorted(declaration.__abstractmethods__))
        raise BrokenRegistryLine(f"registry line {cloud.kind!r}: {cloud.declared_by} does not implement {missing}")
    return declaration


#: The registry every caller uses (tests may replace it).
default = Registry(CLOUDS)


def kinds() -> list[str]:
    """Every registered kind, servable or not, in line order. Imports nothing."""
    return default.kinds()


def declaration(kind: str) -> type[CloudDeclaration]:
    """The class the line of ``kind`` names: a provider class or a template-only declaration."""
    return default.declaration(kind)


def is_servable(kind: str) -> bool:
    """Has the provider of ``kind`` landed (False: only its pool template has)?"""
    return default.is_servable(kind)


def provider_class(kind: str) -> type[Provider]:
    """The provider class of ``kind``; ProviderNotAvailable while only its pool template has landed."""
    return default.provider_class(kind)


def servable_kinds() -> list[str]:
    """Kinds whose provider has landed and can be imported here."""
    return default.servable_kinds()


def settings_model(kind: str) -> type[BaseModel] | None:
    """The model of ``providers.<kind>`` in dispatcher.yaml (None: the cloud takes no settings)."""
    return default.settings_model(kind)


def secret_fields(kind: str) -> tuple[str, ...]:
    """Job variables of ``kind`` whose values may hold secrets (``env`` is always one too)."""
    return default.secret_fields(kind)


def kind_for_pool_type(pool_type: str, managed_provider: str) -> str:
    """The kind that runs pools of ``pool_type`` (for ``prefect:managed``: ``managed_provider``)."""
    return default.kind_for_pool_type(pool_type, managed_provider)


def is_push_pool_type(pool_type: str) -> bool:
    """Does a registered cloud (or Prefect Managed) serve ``pool_type``?"""
    return default.is_push_pool_type(pool_type)


def push_pool_types() -> list[str]:
    """Every pool type a registered class declares, in line order, then ``prefect:managed``."""
    return default.push_pool_types()


def base_job_template(pool_type: str, managed_provider: str = "local", image: str | None = None) -> dict[str, Any]:
    """The base job template ``dispatcher pool create`` writes for ``pool_type``, landed provider or not."""
    return default.base_job_template(pool_type, managed_provider, image)


def secret_fields_of_configuration(configuration_class: type) -> tuple[str, ...]:
    """The secret fields of the cloud whose job configuration class this is (every cloud's if none)."""
    return default.secret_fields_of_configuration(configuration_class)
