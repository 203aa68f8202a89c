"""The Cloud Run provider: each flow run is one execution of a Cloud Run job (Admin API v2).

Submission in the steady state is one ``:run`` of the job of the run's configuration (see
``jobs.py``) with the run's overrides (see ``requests.py``); the execution's full resource
name is the infrastructure id. ``:run`` has no idempotency key, so every execution carries
the attempt's marker in its env, and a submission that may be a repeat looks for it first:
a re-drive (``SubmitRequest.redrive``: recovery after a crash, or another replica), or a
retry after an answer that may hide a carried-out ``:run`` (5xx, timeout, lost connection).
A 429 is a refusal, not an ambiguity. Observation is one paged ``jobs/-/executions`` list
per (credential set, project, region) per tick. ``:run`` calls are paced per (project,
region) by the shared adaptive pacer (Cloud Run's "Job run requests per minute per region").
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Optional
from uuid import UUID

from google.cloud import run_v2
from pydantic import BaseModel

from providers.base import (
    InfraStatus, Provider, ResourceRequest, RunRef, SettingsFinding, Submission, SubmitRequest, WatchBatch,
)
from providers.cloud_run import mapping, requests, validation
from providers.cloud_run.checks import check_cloud_run_settings
from providers.cloud_run.clients import CloudRunClient, CloudRunClients
from providers.cloud_run.config import CloudRunJobConfiguration, CloudRunSettings, CloudRunVariables
from providers.cloud_run.errors import FailedPrecondition, Throttled, is_not_found
from providers.cloud_run.jobs import Jobs
from providers.errors import (
    InfrastructureNotFound,
    InvalidJobConfiguration,
    ProviderError,
    SubmissionRejected,
    TransientProviderError,
)
from providers.pacing import Pacers, PacerSettings

logger = logging.getLogger(__name__)

#: Attempts remembered as started by this process (a repeated submit answers from memory).
REMEMBERED_ATTEMPTS = 50_000
#: find() reads a job's executions back to this long before the claim (UUIDv7 attempt ids carry its time).
FIND_LOOKBACK = timedelta(minutes=15)


class _Observed(BaseModel):
    index: int
    execution: str


def location_of(infrastructure_id: str) -> str:
    """``projects/P/locations/L`` of an execution name ``projects/P/locations/L/jobs/J/executions/E``."""
    parts = infrastructure_id.split("/")
    if len(parts) != 8 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != "jobs" \
            or parts[6] != "executions" or not all(parts):
        raise ValueError(f"{infrastructure_id!r} is not a Cloud Run execution name")
    return "/".join(parts[:4])


def claim_time(attempt_id: UUID) -> Optional[datetime]:
    """When the attempt was claimed, if its id is a UUIDv7 (Prefect's state ids are)."""
    if attempt_id.version != 7:
        return None
    return datetime.fromtimestamp((attempt_id.int >> 80) / 1000, timezone.utc)


def run_pacing(s: CloudRunSettings) -> PacerSettings:
    """How :run calls are paced per (project, region): at the known quota, else adaptively.

    One decrease per second of 429s: a burst of submissions in flight bounces together, and halving
    once per bounced call would collapse the pace to its floor on a single quota refusal.
    """
    if s.run_quota_per_min is not None:
        quota = s.run_quota_per_min / 60
        return PacerSettings(initial_rate=quota, min_rate=quota / 20, max_rate=quota, burst=min(s.run_burst, quota * 60),
                             increase_per_s=quota / 10, decrease_cooldown_s=1.0)
    return PacerSettings(initial_rate=min(s.run_rate_per_s, s.run_rate_max_per_s),
                         min_rate=min(0.5, s.run_rate_per_s), max_rate=s.run_rate_max_per_s,
                         burst=s.run_burst, increase_per_s=s.run_rate_increase_per_s, decrease_cooldown_s=1.0)


class CloudRunProvider(Provider[CloudRunJobConfiguration]):
    """Runs flow runs as Cloud Run job executions; one instance serves every cloud-run-v2:push pool."""

    kind = "cloud-run"
    job_configuration = CloudRunJobConfiguration
    job_variables = CloudRunVariables
    pool_types: ClassVar[tuple[str, ...]] = ("cloud-run-v2:push",)
    secret_fields: ClassVar[tuple[str, ...]] = ("credentials",)  # a gcp-credentials block: the service account key
    settings_model: ClassVar[type[BaseModel]] = CloudRunSettings

    def __init__(self, settings: CloudRunSettings | None = None) -> None:
        self.settings = settings or CloudRunSettings()
        self.clients = CloudRunClients(self.settings)
        self.jobs = Jobs()
        self.pacers = Pacers(run_pacing(self.settings))
        self._started: OrderedDict[UUID, Submission] = OrderedDict()
        self._uncertain: set[UUID] = set()

    # -- pure --------------------------------------------------------------------------------

    def resources(self, configuration: CloudRunJobConfiguration) -> ResourceRequest:
        return validation.resources(self.own(configuration))

    def validate(self, configuration: CloudRunJobConfiguration) -> None:
        validation.validate(self.own(configuration))

    @classmethod
    def managed_allocation(cls, configuration: CloudRunJobConfiguration, allocation: Any) -> CloudRunJobConfiguration:
        """The container's cpu and memory limits; Cloud Run jobs have no configurable disk (memory-backed)."""
        return configuration.model_copy(update={"job_body": requests.with_limits(configuration, allocation)})

    def submit_backlog_s(self) -> float:
        return self.pacers.backlog_s()

    # -- submit ----------------------------------------------------------------------------------

    async def _location(self, cfg: CloudRunJobConfiguration) -> tuple[CloudRunClient, str, str]:
        key, _ = self.clients.resolve(cfg.credentials)
        client = await self.clients.client(cfg.credentials)
        return client, key, f"projects/{self.clients.project_of(client)}/locations/{cfg.region}"

    async def submit(self, request: SubmitRequest) -> Submission:
        cfg = self.own(request.configuration)
        validation.validate(cfg)
        known = self._started.get(request.attempt_id)
        if known is not None:
            return known.model_copy(update={"created": False})
        client, key, parent = await self._location(cfg)
        spec = requests.build_job(cfg)
        if request.redrive or request.attempt_id in self._uncertain:
            found = await self._find(client, parent, spec, request.attempt_id)
            if found is not None:
                logger.info("attempt %s already has Cloud Run execution %s: adopted", request.attempt_id,
                            found.infrastructure_id)
                return self._remember(request.attempt_id, found)
        name = await self.jobs.ensure(client, key, parent, spec)
        run = requests.build_run(cfg, request, spec)
        execution = await self._run(client, key, parent, name, run, request.attempt_id)
        self._uncertain.discard(request.attempt_id)
        return self._remember(request.attempt_id, Submission(infrastructure_id=execution.name, created=True))

    def _remember(self, attempt_id: UUID, submission: Submission) -> Submission:
        self._started[attempt_id] = submission.model_copy(update={"created": False})
        while len(self._started) > REMEMBERED_ATTEMPTS:
            self._started.popitem(last=False)
        return submission

    async def _run(self, client: CloudRunClient, key: str, parent: str, name: str, run: requests.RunSpec,
                   attempt_id: UUID) -> run_v2.Execution:
        pacer = self.pacers("run", parent)
        await pacer.acquire()
        try:
            execution = await client.run_job(name, run.body, run.secrets)
        except Throttled as exc:  # refused, not carried out: no ambiguity, just slower
            pacer.throttled(exc.retry_after)
            raise
        except InfrastructureNotFound:
            self.jobs.forget(key, name)  # deleted behind our back: the retry creates it again
            raise TransientProviderError(f"Cloud Run job {name} does not exist (any more); it is created again",
                                         code="NOT_FOUND") from None
        except FailedPrecondition as exc:
            await self._not_ready(client, key, name, exc)
            raise  # _not_ready always raises; this keeps type checkers calm
        except TransientProviderError:
            if len(self._uncertain) >= REMEMBERED_ATTEMPTS:
                self._uncertain.pop()  # bounded; a forgotten one is still found when the dispatcher re-drives it
            self._uncertain.add(attempt_id)  # Cloud Run may have started it: the retry looks first
            raise
        pacer.succeeded()
        return execution

    async def _not_ready(self, client: CloudRunClient, key: str, name: str, exc: FailedPrecondition) -> None:
        """``:run`` refused with FAILED_PRECONDITION: the job is still being created (retry), or broken."""
        try:
            job = await client.get_job(name)
        except InfrastructureNotFound:
            self.jobs.forget(key, name)  # deleted meanwhile (housekeeping elsewhere): the retry creates it
            raise TransientProviderError(f"Cloud Run job {name} does not exist (any more)", code="NOT_FOUND") from None
        condition = job.terminal_condition
        if condition.state != run_v2.Condition.State.CONDITION_FAILED:
            raise TransientProviderError(f"Cloud Run job {name} is not ready yet", code="JOB_NOT_READY") from None
        self.jobs.forget(key, name)
        try:  # a broken job stays broken; a fixed image under the same name gets a fresh job
            await client.delete_job(name)
        except ProviderError as error:
            logger.info("could not delete broken Cloud Run job %s: %s", name, error)
        raise SubmissionRejected(f"Cloud Run job {name.rsplit('/', 1)[-1]} cannot run: {condition.message or exc}",
                                 code=run_v2.Condition.CommonReason(condition.reason).name if condition.reason
                                 else "JOB_NOT_READY") from None

    async def find(self, request: SubmitRequest) -> Submission | None:
        known = self._started.get(request.attempt_id)
        if known is not None:
            return known
        cfg = self.own(request.configuration)
        client, _, parent = await self._location(cfg)
        return await self._find(client, parent, requests.build_job(cfg), request.attempt_id)

    async def _find(self, client: CloudRunClient, parent: str, spec: requests.JobSpec, attempt_id: UUID
                    ) -> Submission | None:
        """The execution carrying the attempt's marker among its job's newest executions (one list call,
        more only for busy jobs); executions created before the claim cannot be the attempt's."""
        marker = requests.marker(attempt_id)
        claimed = claim_time(attempt_id)
        cutoff = claimed - FIND_LOOKBACK if claimed is not None else None
        token = ""
        for _ in range(self.settings.find_max_pages):
            try:
                page = await client.list_executions(Jobs.name(parent, spec), self.settings.find_page_size, token)
            except InfrastructureNotFound:
                return None  # no job: nothing of this configuration ever ran
            for execution in page.executions:
                if requests.marker_of(execution) == marker:
                    return Submission(infrastructure_id=execution.name, created=False)
            oldest = mapping._utc(page.executions[-1].create_time) if page.executions else None
            token = page.next_page_token
            if not token or (cutoff is not None and oldest is not None and oldest < cutoff):
                return None
        logger.warning("find(%s): gave up after %d pages of %s", attempt_id, self.settings.find_max_pages, spec.job_id)
        return None

    # -- observe ---------------------------------------------------------------------------------

    def watch_batch(self, run: RunRef) -> WatchBatch | None:
        """Executions are observed by listing their location, which answers for all of them: one watcher per
        location and credential set makes the List calls one replica would."""
        try:
            parent = location_of(run.infrastructure_id)
            key, _ = self.clients.resolve(self.own(run.configuration).credentials)
        except (ValueError, ProviderError):
            return None
        return WatchBatch(key=f"cloud-run|{key}|{parent}", size=None)

    async def status_many(self, runs: Sequence[RunRef]) -> list[InfraStatus]:
        results: list[Optional[InfraStatus]] = [None] * len(runs)
        groups: dict[tuple[str, str], list[_Observed]] = defaultdict(list)
        clients: dict[tuple[str, str], CloudRunClient] = {}
        for index, run in enumerate(runs):
            try:
                parent = location_of(run.infrastructure_id)
                cfg = self.own(run.configuration)
                key, _ = self.clients.resolve(cfg.credentials)
                client = await self.clients.client(cfg.credentials)
            except (ValueError, InvalidJobConfiguration) as exc:
                results[index] = InfraStatus.not_found(run.infrastructure_id, f"not a Cloud Run execution: {exc}")
                continue
            except ProviderError as exc:  # credentials unusable: unobserved, the dispatcher's deadline decides
                results[index] = InfraStatus.unobserved(run.infrastructure_id, exc)
                continue
            clients[(key, parent)] = client
            self.jobs.locations[(key, parent)] = client  # housekeeping also sweeps where runs of a past process live
            groups[(key, parent)].append(_Observed(index=index, execution=run.infrastructure_id))
        order = list(groups)
        outcomes = await asyncio.gather(*(self._list(clients[g], g[1], {o.execution for o in groups[g]})
                                          for g in order), return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        for outcome in failed:
            if not isinstance(outcome, ProviderError):
                raise outcome
        if failed and len(failed) == len(order) and all(r is None for r in results):
            raise failed[0]  # nothing could be observed: the dispatcher retries the whole call
        for group, outcome in zip(order, outcomes, strict=True):
            for item in groups[group]:
                results[item.index] = _status(item.execution, outcome)
        return [status for status in results if status is not None]

    async def _list(self, client: CloudRunClient, parent: str, wanted: set[str]) -> dict[str, run_v2.Execution]:
        """Page through every execution of the location until each wanted one was seen (newest first, so
        in-flight runs are on the first page in the usual case)."""
        found: dict[str, run_v2.Execution] = {}
        token = ""
        while True:
            page = await client.list_executions(f"{parent}/jobs/-", self.settings.list_page_size, token,
                                                status_only=True)
            for execution in page.executions:
                if execution.name in wanted:
                    found[execution.name] = execution
            token = page.next_page_token
            if len(found) == len(wanted) or not token:
                return found

    # -- stop, housekeeping ----------------------------------------------------------------------

    async def stop(self, run: RunRef, reason: str) -> None:
        try:
            location_of(run.infrastructure_id)
        except ValueError:
            logger.warning("not stopping %r: not a Cloud Run execution name", run.infrastructure_id)
            return
        client = await self.clients.client(self.own(run.configuration).credentials)
        try:
            await client.cancel_execution(run.infrastructure_id)
        except InfrastructureNotFound:
            logger.info("Cloud Run execution %s is already gone", run.infrastructure_id)
        except FailedPrecondition as exc:  # "has already completed and cannot be cancelled"
            logger.info("Cloud Run execution %s is already over: %s", run.infrastructure_id, exc)
        else:
            logger.info("cancelled Cloud Run execution %s: %s", run.infrastructure_id, reason)

    async def housekeeping(self) -> None:
        try:
            await self.jobs.sweep(self.settings.job_idle_delete_s)
        except Exception:  # noqa: BLE001 - the contract: log and retry on the next sweep
            logger.exception("Cloud Run housekeeping failed; retried on the next sweep")

    async def check_settings(self) -> list[SettingsFinding]:
        return await check_cloud_run_settings(self.settings)

    async def aclose(self) -> None:
        await self.clients.aclose()


def _status(name: str, outcome: dict[str, run_v2.Execution] | BaseException) -> InfraStatus:
    if isinstance(outcome, ProviderError):
        if is_not_found(outcome):
            return InfraStatus.not_found(name, str(outcome))
        return InfraStatus.unobserved(name, outcome)
    assert isinstance(outcome, dict)
    execution = outcome.get(name)
    if execution is None:
        return InfraStatus.not_found(name, "absent from the location's executions list")
    return mapping.execution_status(execution, name)
