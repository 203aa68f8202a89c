"""Prefect Managed (``prefect:managed``) on any provider: one set of job variables, the fixed allocation.

Prefect Cloud's managed pools offer a small, cloud-neutral set of job variables:
Prefect's base ones (``command``, ``env``, ``labels``, ``name``) plus ``image`` (an
official Prefect image) and ``pip_packages`` (installed at run start). Every run gets
4 vCPU, 16 GB and 128 GB of disk, whatever it asks. Here a ``prefect:managed`` pool is
served by the provider ``managed_provider`` names, so:

* its base job template (:func:`managed_base_job_template`) has those variables only;
  its ``job_configuration`` is the provider's own, with every other placeholder replaced
  by that variable's default (an operator may hard-code others there, e.g. an ECS
  cluster), so Prefect's resolution builds the provider's configuration class
  (:func:`managed_configuration_class`: the provider's, plus ``image`` and ``pip_packages``);
* ``pip_packages`` become ``EXTRA_PIP_PACKAGES``, which the official image's entrypoint
  (``/opt/prefect/entrypoint.sh``) installs before it execs the command; the local
  provider installs them into a cached virtual environment (``providers.local.packages``);
* :class:`ManagedProvider` wraps the provider for one pool: it refuses images outside the
  operator's allow-list and gives every run the allocation (the provider's
  ``managed_allocation`` puts it into its own fields), before validation and submission.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Optional

import prefect
from prefect.utilities.templating import apply_values
from prefect.workers.base import BaseJobConfiguration, BaseVariables
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from providers.base import InfraStatus, Provider, ResourceRequest, RunRef, SettingsFinding, Submission, SubmitRequest
from providers.errors import InvalidJobConfiguration

if TYPE_CHECKING:
    from providers.declaration import CloudDeclaration

#: What every managed run gets (Prefect Managed's published resources).
MANAGED_VCPU = 4.0
MANAGED_MEMORY_MIB = 16384
MANAGED_EPHEMERAL_STORAGE_GIB = 128
#: The variable the official image's entrypoint reads (space-separated, word-split by bash).
EXTRA_PIP_PACKAGES = "EXTRA_PIP_PACKAGES"
#: One requirement without spaces or shell metacharacters: the entrypoint word-splits the list unquoted.
_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?([<>=!~]=?[A-Za-z0-9.*+!_-]+(,[<>=!~]=?[A-Za-z0-9.*+!_-]+)*)?$")
_PLACEHOLDER_VARIABLES = ("command", "env", "labels", "name", "image", "pip_packages")


def official_image(prefect_version: str | None = None, python: tuple[int, int] | None = None) -> str:
    """``prefecthq/prefect:<version>-python<X.Y>``: the server's Prefect version, this interpreter's Python."""
    version = prefect_version or prefect.__version__
    major, minor = python or sys.version_info[:2]
    return f"prefecthq/prefect:{version}-python{major}.{minor}"


class ManagedVariables(BaseVariables):
    """Job variables of a ``prefect:managed`` pool: Prefect's base variables plus image and pip packages."""

    image: str = Field(
        default_factory=official_image,
        title="Image",
        description="An official Prefect image (prefecthq/prefect:...) to run the flow in; the dispatcher refuses "
        "images outside its allow-list. Default: the image of the server's Prefect version.",
    )
    pip_packages: list[str] = Field(
        default_factory=list,
        title="Pip Packages",
        description="Python packages installed before the flow starts, e.g. ['pandas', 'prefect-aws'].",
    )


class ManagedAllocation(BaseModel):
    """What every run of a managed pool gets: Prefect Managed's resources, or less where the operator capped them."""

    model_config = ConfigDict(frozen=True)

    vcpu: float = Field(default=MANAGED_VCPU, gt=0, description="vCPUs of every run.")
    memory_mib: int = Field(default=MANAGED_MEMORY_MIB, gt=0, description="Memory of every run in MiB.")
    ephemeral_storage_gib: int = Field(
        default=MANAGED_EPHEMERAL_STORAGE_GIB, gt=0, description="Ephemeral disk of every run in GiB (where settable)."
    )

    @classmethod
    def within(cls, vcpu: float | None, memory_mib: int | None, ephemeral_storage_gib: int | None) -> ManagedAllocation:
        """The managed allocation, lowered to the operator's caps (caps above it do not raise it)."""
        def lowest(fixed: Any, cap: Any) -> Any:
            return fixed if cap is None else min(fixed, cap)
        return cls(vcpu=lowest(MANAGED_VCPU, vcpu), memory_mib=lowest(MANAGED_MEMORY_MIB, memory_mib),
                   ephemeral_storage_gib=lowest(MANAGED_EPHEMERAL_STORAGE_GIB, ephemeral_storage_gib))


def normalized_packages(packages: Sequence[Any]) -> list[str]:
    """The requirements, spaces removed, names as PEP 503 writes them, sorted and de-duplicated (so one
    package set has one spelling: the local provider's cache key); InvalidJobConfiguration names a bad one.

    A requirement must survive the image entrypoint's unquoted word-splitting, so markers
    (``; python_version...``), URLs and anything with quotes or shell characters are refused.
    """
    found: set[str] = set()
    for package in packages:
        if not isinstance(package, str):
            raise InvalidJobConfiguration("pip_packages", f"<{type(package).__name__}>", "a list of strings")
        text = "".join(package.split())
        if not _REQUIREMENT.match(text):
            raise InvalidJobConfiguration(
                "pip_packages", package,
                "package names with optional extras and version specifiers, e.g. 'pandas', 'prefect-aws>=0.5', "
                "'pandas[excel]==2.2.3' (no markers, URLs, paths, spaces inside a name or shell characters)")
        name = re.match(r"[A-Za-z0-9._-]+", text).group(0)  # type: ignore[union-attr]
        found.add(re.sub(r"[-_.]+", "-", name).lower() + text[len(name):])  # PEP 503's name: one set, one key
    return sorted(found)


def image_allowed(image: str, patterns: Sequence[str]) -> bool:
    """Does ``image`` match one of the allow-list's shell-style patterns (``prefecthq/prefect:*``)?"""
    return any(fnmatch.fnmatchcase(image, pattern) for pattern in patterns)


class _ManagedFields(BaseModel):
    """What a managed configuration adds to the provider's."""

    pip_packages: list[str] = Field(default_factory=list, description="Packages installed before the flow starts.")
    #: The container's command must run through the image's entrypoint (which installs pip_packages).
    keeps_image_entrypoint: ClassVar[bool] = True

    @field_validator("pip_packages", mode="before")
    @classmethod
    def _normalized(cls, value: Any) -> Any:
        """One spelling per package set; a bad requirement is InvalidJobConfiguration, naming it."""
        if value is None:
            return []
        return normalized_packages(value) if isinstance(value, list) else value

    def prepare_for_flow_run(self, flow_run: Any, *args: Any, **kwargs: Any) -> None:
        super().prepare_for_flow_run(flow_run, *args, **kwargs)  # type: ignore[misc]
        if self.pip_packages:  # the official image's entrypoint installs these before it execs the command
            self.env[EXTRA_PIP_PACKAGES] = " ".join(self.pip_packages)  # type: ignore[attr-defined]


@functools.cache
def managed_configuration_class(inner: type[BaseJobConfiguration]) -> type[BaseJobConfiguration]:
    """The provider's configuration plus ``image`` and ``pip_packages`` (one class per provider).

    Fields the provider requires without a default (ACI's resource group and subscription)
    default to empty: the provider's settings fill them, as for any configuration naming none.
    """
    extra: dict[str, Any] = {}
    if "image" not in inner.model_fields:
        extra["image"] = (Optional[str], Field(default=None, description="The official Prefect image."))
    for name, field in inner.model_fields.items():
        if field.is_required():
            extra[name] = (field.annotation, Field(default="", description=field.description))
    return create_model(f"Managed{inner.__name__}", __base__=(_ManagedFields, inner), **extra)  # type: ignore[call-overload]


def managed_base_job_template(declaration: type[CloudDeclaration], image: str | None = None) -> dict[str, Any]:
    """The template ``pool create`` writes for a ``prefect:managed`` pool served by ``declaration``'s provider."""
    own = declaration.base_job_template()
    defaults = {name: prop["default"] for name, prop in own["variables"].get("properties", {}).items()
                if "default" in prop}
    kept = {name: "{{ %s }}" % name for name in _PLACEHOLDER_VARIABLES}
    job_configuration = apply_values(own["job_configuration"], {**defaults, **kept})
    job_configuration.update({"image": "{{ image }}", "pip_packages": "{{ pip_packages }}"})
    variables = ManagedVariables.model_json_schema()
    variables["properties"]["image"]["default"] = image or official_image()
    return {"job_configuration": job_configuration, "variables": variables}


class ManagedProvider(Provider):  # type: ignore[type-arg]
    """One managed pool's view of its provider: managed variables, the allow-list, the fixed allocation.

    Everything else is the provider's: validation, resources, submission and look-ups get the
    configuration with the allocation applied (pure and cheap), so a re-driven submission finds
    exactly what the first one started; calls about started infrastructure go through as they are.
    """

    def __init__(self, inner: Provider, allocation: ManagedAllocation, allowed_images: Sequence[str]) -> None:
        self.inner = inner
        self.allocation = allocation
        self.allowed_images = tuple(allowed_images)
        self.kind = inner.kind  # type: ignore[misc]
        self.job_configuration = managed_configuration_class(inner.job_configuration)  # type: ignore[misc]
        self.secret_fields = inner.secret_fields  # type: ignore[misc]

    def _allocated(self, configuration: BaseJobConfiguration) -> BaseJobConfiguration:
        own = self.job_configuration.model_validate(configuration.model_dump()) \
            if not isinstance(configuration, self.job_configuration) else configuration
        return self.inner.managed_allocation(own, self.allocation)

    def _request(self, request: SubmitRequest) -> SubmitRequest:
        return request.model_copy(update={"configuration": self._allocated(request.configuration)})

    def resources(self, configuration: BaseJobConfiguration) -> ResourceRequest:
        return self.inner.resources(self._allocated(configuration))

    def validate(self, configuration: BaseJobConfiguration) -> None:
        image = getattr(configuration, "image", None)
        if not image:  # a pool written before Prefect Managed's variables (its provider's own template)
            raise InvalidJobConfiguration("image", image, "an official Prefect image; this prefect:managed pool's "
                                          "template has no image variable: recreate it with `dispatcher pool create "
                                          "<pool> --type prefect:managed --overwrite`")
        if not image_allowed(image, self.allowed_images):
            raise InvalidJobConfiguration(
                "image", image, f"an image of this dispatcher's managed allow-list ({', '.join(self.allowed_images)})")
        normalized_packages(getattr(configuration, "pip_packages", None) or [])
        self.inner.validate(self._allocated(configuration))

    async def submit(self, request: SubmitRequest) -> Submission:
        return await self.inner.submit(self._request(request))

    async def find(self, request: SubmitRequest) -> Submission | None:
        return await self.inner.find(self._request(request))

    # Started infrastructure is found by its id: no allocation needed (and the watcher batches a cloud's
    # runs of every pool through one of its pools' providers, managed or not).
    async def status_many(self, runs: Sequence[RunRef]) -> list[InfraStatus]:
        return await self.inner.status_many(runs)

    async def stop(self, run: RunRef, reason: str) -> None:
        await self.inner.stop(run, reason)

    async def last_log_lines(self, run: RunRef, limit: int = 20) -> list[str]:
        return await self.inner.last_log_lines(run, limit)

    async def release(self, run: RunRef) -> None:
        await self.inner.release(run)

    async def check_settings(self) -> list[SettingsFinding]:
        return await self.inner.check_settings()

    def start_timeout_s(self, configuration: BaseJobConfiguration) -> float | None:
        return self.inner.start_timeout_s(self._allocated(configuration))

    def submit_backlog_s(self) -> float:
        return self.inner.submit_backlog_s()

    async def housekeeping(self) -> None:
        await self.inner.housekeeping()

    async def aclose(self) -> None:
        """The inner provider is shared with the other pools: its owner closes it."""
