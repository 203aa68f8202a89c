"""The contract between the dispatcher and a cloud.

A provider is thin: build a request (pure) -> one SDK call -> map the response
(pure). Polling, retries, deadlines, Prefect state transitions and metering live
once in ``dispatcher/``; a provider never sleeps, never retries on its own (the
SDK's own transport retries aside) and never talks to Prefect.

Every method raises only :mod:`providers.errors` exceptions.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, Literal, TypeVar
from uuid import UUID

from prefect.workers.base import BaseJobConfiguration
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from providers.declaration import CloudDeclaration
from providers.errors import invalid_configuration
from providers.secrets import RunSecrets


class InfraPhase(str, enum.Enum):
    """Where the infrastructure of one run is, in provider-neutral terms."""

    PENDING = "PENDING"  # accepted by the cloud, not running the command yet
    RUNNING = "RUNNING"
    EXITED = "EXITED"  # terminal: the command ended or the infrastructure was stopped
    NOT_FOUND = "NOT_FOUND"  # the cloud has no record of it
    UNKNOWN = "UNKNOWN"  # the cloud answered with a state this provider does not know


class StopCause(str, enum.Enum):
    """Why infrastructure in phase EXITED stopped."""

    EXITED = "EXITED"  # the command ended on its own; see exit_code
    FAILED_TO_START = "FAILED_TO_START"  # image pull, placement, bad command...
    STOPPED = "STOPPED"  # somebody (usually the dispatcher) asked it to stop
    INTERRUPTED = "INTERRUPTED"  # the cloud took it away (spot reclaim, host failure)
    TIMED_OUT = "TIMED_OUT"  # a runtime cap enforced by the infrastructure itself
    UNKNOWN = "UNKNOWN"


class ResourceRequest(BaseModel):
    """What one run asks for, normalised so limits can be checked without knowing the cloud."""

    model_config = ConfigDict(frozen=True)

    vcpu: float | None = Field(default=None, description="vCPUs requested (None: the infrastructure's default).")
    memory_mib: int | None = Field(default=None, description="Memory requested in MiB.")
    ephemeral_storage_gib: int | None = Field(default=None, description="Ephemeral disk requested in GiB.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Job variable name each value came from (vcpu -> 'cpu'), so limit messages name the user's field.",
    )


class RunLimits(BaseModel):
    """Caps the dispatcher has decided for this run; providers pass them to infrastructure that can enforce them."""

    model_config = ConfigDict(frozen=True)

    max_runtime_s: int = Field(description="Wall-clock seconds the run may take before it is stopped.")


class SubmitRequest(BaseModel):
    """Everything a provider needs to start the infrastructure of one flow run."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    flow_run_id: UUID = Field(description="The Prefect flow run this infrastructure executes.")
    attempt_id: UUID = Field(
        description="This attempt of the flow run (a retry from Prefect is a new attempt): name infrastructure after it."
    )
    idempotency_key: str = Field(
        description="Derived from the attempt id (at most 41 characters); submitting twice with the same key starts "
        "one infrastructure."
    )
    workspace: str = Field(description="Workspace name from the dispatcher configuration.")
    pool: str = Field(description="Work pool name.")
    configuration: SerializeAsAny[BaseJobConfiguration] = Field(
        description="Fully resolved job configuration (Prefect semantics), of the provider's own class."
    )
    limits: RunLimits = Field(description="Caps decided by the dispatcher for this run.")
    redrive: bool = Field(
        default=False,
        description="The dispatcher may have submitted this attempt before (recovery re-drives a claim that was never "
        "recorded as submitted). A provider whose cloud has no idempotency key looks for the attempt's infrastructure "
        "first; the others may ignore it.",
    )
    secrets: RunSecrets = Field(
        default_factory=RunSecrets,
        exclude=True,
        description="Known secret values of the run; providers mask them in whatever output they keep.",
    )


class Submission(BaseModel):
    """What a successful submit returns."""

    infrastructure_id: str = Field(description="Identifier recorded as the flow run's infrastructure_pid.")
    created: bool = Field(description="False when an earlier submit with the same idempotency key was found.")


class RunRef(BaseModel):
    """Enough to find one run's infrastructure again (after a restart too)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    flow_run_id: UUID = Field(description="The Prefect flow run.")
    attempt_id: UUID = Field(description="The attempt this infrastructure was started for.")
    infrastructure_id: str = Field(description="What submit returned.")
    configuration: SerializeAsAny[BaseJobConfiguration] = Field(
        description="The run's job configuration; carries credentials, region, cluster..."
    )


class InfraStatus(BaseModel):
    """One observation of one run's infrastructure, with the cloud's own timestamps."""

    infrastructure_id: str = Field(description="As returned by submit.")
    phase: InfraPhase = Field(description="Provider-neutral phase.")
    native_state: str = Field(description="The cloud's own state string(s), for logs and messages.")
    started_at: datetime | None = Field(default=None, description="When compute started (the cloud's clock).")
    stopped_at: datetime | None = Field(default=None, description="When compute was torn down (the cloud's clock).")
    exit_code: int | None = Field(default=None, description="Exit code of the flow's command, if it is known.")
    stop_cause: StopCause | None = Field(default=None, description="Why it stopped, when phase is EXITED.")
    reason: str | None = Field(default=None, description="The cloud's own explanation, safe to show users.")

    @classmethod
    def not_found(cls, infrastructure_id: str, reason: str, native_state: str = "MISSING") -> InfraStatus:
        """The cloud has no record of it (deleted, expired, or never ours)."""
        return cls(infrastructure_id=infrastructure_id, phase=InfraPhase.NOT_FOUND, native_state=native_state, reason=reason)

    @classmethod
    def unobserved(cls, infrastructure_id: str, error: Exception) -> InfraStatus:
        """The call that would have observed it failed while others succeeded: unknown this tick, retried next."""
        code = getattr(error, "code", None) or type(error).__name__
        return cls(infrastructure_id=infrastructure_id, phase=InfraPhase.UNKNOWN, native_state=f"UNOBSERVED/{code}",
                   reason=str(error))


class WatchBatch(BaseModel):
    """How ``status_many`` groups a run with others: which runs one cloud call can observe together.

    Replicas divide the watching in whole batches (see ``dispatcher/loops/shards.py``), so that three
    replicas make the calls one would: a run's batch is filled before another is opened.
    """

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Runs with equal keys can share a status call (credential fingerprint, "
                                 "cluster, location...); never a secret.")
    size: int | None = Field(description="Runs one status call observes at most; None: any number (a List "
                                         "answers for every run of the key at once).", ge=1)


class SettingsFinding(BaseModel):
    """One result of :meth:`Provider.check_settings`, printed by ``dispatcher check``."""

    level: Literal["ok", "warn", "fail"] = Field(
        description="fail: serve could not run pools of this provider; warn: some pools may not run."
    )
    message: str = Field(description="What was found, for an operator; never a secret value.")


ConfigT = TypeVar("ConfigT", bound=BaseJobConfiguration)


class Provider(CloudDeclaration, abc.ABC, Generic[ConfigT]):
    """One cloud. Instances are long-lived and shared by every run of every pool they serve.

    Implementations cache SDK clients per credential set (never one client per run)
    and must be safe to call concurrently from one asyncio loop. What the registry
    reads (``kind``, ``pool_types``, ``job_configuration``, ``job_variables``,
    ``secret_fields``, ``settings_model``) is declared as in :class:`CloudDeclaration`;
    ``__init__`` takes an instance of ``settings_model`` when there is one.
    """

    @classmethod
    def own(cls, configuration: BaseJobConfiguration) -> ConfigT:
        """The configuration as this provider's class (it may arrive as a plain BaseJobConfiguration)."""
        if isinstance(configuration, cls.job_configuration):
            return configuration  # type: ignore[return-value]
        try:
            return cls.job_configuration.model_validate(configuration.model_dump())  # type: ignore[return-value]
        except ValidationError as exc:
            raise invalid_configuration(exc, cls.secret_fields) from None

    @abc.abstractmethod
    def resources(self, configuration: ConfigT) -> ResourceRequest:
        """Pure: what this configuration asks for. Raises InvalidJobConfiguration on malformed values."""

    @abc.abstractmethod
    def validate(self, configuration: ConfigT) -> None:
        """Pure: every check the cloud would make that can be made without calling it.

        Raises InvalidJobConfiguration naming field, value and the allowed range.
        """

    @abc.abstractmethod
    async def submit(self, request: SubmitRequest) -> Submission:
        """Start the run's infrastructure.

        Idempotent: a second call with the same ``idempotency_key`` (after a crash,
        from another replica) returns the first call's infrastructure and starts
        nothing. Raises TransientProviderError subclasses when a retry may succeed.
        """

    @abc.abstractmethod
    async def find(self, request: SubmitRequest) -> Submission | None:
        """The infrastructure an earlier ``submit`` with this idempotency key started, if any.

        Never starts anything. Recovery calls it for runs whose submission may have
        happened just before a crash, when re-submitting is no longer right (the run
        is already final) but its compute must still be metered. None: nothing found.
        """

    @abc.abstractmethod
    async def status_many(self, runs: Sequence[RunRef]) -> list[InfraStatus]:
        """Observe many runs with as few cloud calls as the cloud allows.

        Returns one status per input, in input order. Infrastructure the cloud does
        not know is NOT_FOUND; a state the provider cannot map is UNKNOWN (and logged),
        never a success. Raises TransientProviderError when nothing could be observed.
        """

    def watch_batch(self, run: RunRef) -> WatchBatch | None:
        """Pure: the batch ``status_many`` observes this run in. None (the default): one call per run,
        or batching that does not depend on which runs a replica watches; runs are then spread one by one."""
        return None

    @abc.abstractmethod
    async def stop(self, run: RunRef, reason: str) -> None:
        """Stop the run's infrastructure. Idempotent: already stopped or not found is success."""

    async def last_log_lines(self, run: RunRef, limit: int = 20) -> list[str]:
        """The last lines the run's command printed, if the cloud keeps them; best effort."""
        return []

    async def release(self, run: RunRef) -> None:
        """The dispatcher has recorded everything it needs of this run (state, exit code, timestamps, log tail).

        Providers whose infrastructure outlives its run (ACI container groups) delete it here,
        or queue its deletion for ``housekeeping``. Best effort: never raises. Default: nothing.
        """

    async def check_settings(self) -> list[SettingsFinding]:
        """Can the dispatcher-side settings work (credentials resolvable, directories writable...)?

        For ``dispatcher check``: never starts anything, writes nothing, prints no secret.
        [] means there is nothing to verify beyond the settings model.
        """
        return []

    def start_timeout_s(self, configuration: ConfigT) -> float | None:
        """How long this run's infrastructure may stay PENDING (not running its command yet) before the
        run is Crashed and the infrastructure stopped; None: no limit but the runtime cap. Pure."""
        return None

    def submit_backlog_s(self) -> float:
        """Seconds a submission asked for now would wait for the cloud's quota (client-side pacing).

        The dispatcher does not claim a run while this exceeds its claim horizon, so runs it
        cannot start soon stay SCHEDULED, free for another replica. 0: no pacing here.
        """
        return 0.0

    async def housekeeping(self) -> None:
        """Periodic clean-up the dispatcher calls every minute or so (e.g. deleting old run records).

        Idempotent and best effort: several replicas may call it at once, and a failure is
        logged by the provider and retried on the next call; it never raises past logging.
        """

    async def aclose(self) -> None:
        """Release SDK clients."""
