"""The ECS provider: each flow run is one ECS task (Fargate by default).

Submission in the steady state is one AWS call, RunTask: the task definition
comes from an in-process cache keyed by content hash (see ``taskdefs.py``),
subnets from the configuration, the settings or a once-per-process lookup (see
``network.py``). ``clientToken`` = the dispatcher's idempotency key, so a
submission re-driven after a crash gets the first task back instead of a second
one; ECS answers ConflictException (naming the first task) when the re-driven
request differs (say, another replica's worker name in the environment), and
that task is adopted too. Observation is one DescribeTasks per 100 runs of a
(credential set, cluster).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar, Optional

from botocore.exceptions import ClientError
from pydantic import BaseModel

from providers.base import (
    InfraStatus, Provider, ResourceRequest, RunRef, SettingsFinding, Submission, SubmitRequest, WatchBatch,
)
from providers.ecs import mapping, naming, validation
from providers.ecs.checks import check_ecs_settings
from providers.ecs.clients import AwsClients
from providers.ecs.config import EcsJobConfiguration, EcsSettings, EcsVariables
from providers.ecs.credentials import AwsCredentials
from providers.ecs.errors import aws_errors, is_not_found
from providers.ecs.network import Subnets
from providers.ecs.requests import (
    RunTaskSpec,
    TaskDefinitionInfo,
    TaskDefinitionSpec,
    build_run_task,
    build_task_definition,
    check_model,
    log_target_for,
)
from providers.ecs.taskdefs import TaskDefinitions
from providers.pacing import PacerSettings, Pacers
from providers.errors import (
    InvalidJobConfiguration,
    ThrottledError,
    PermanentProviderError,
    ProviderError,
    SubmissionRejected,
    TransientProviderError,
)

logger = logging.getLogger(__name__)

#: A RunTask answer whose task was created this long before the call is a clientToken replay.
REPLAY_MARGIN_S = 10.0
STOP_REASON_MAX = 255


class _Observed(BaseModel):
    """One run to observe, with where its answer goes."""

    index: int
    task_arn: str
    infrastructure_id: str
    container_name: str


class EcsProvider(Provider[EcsJobConfiguration]):
    """Runs flow runs as ECS tasks; one instance serves every ecs:push pool of the dispatcher."""

    kind = "ecs"
    job_configuration = EcsJobConfiguration
    job_variables = EcsVariables
    pool_types: ClassVar[tuple[str, ...]] = ("ecs:push",)
    secret_fields: ClassVar[tuple[str, ...]] = ("aws_credentials",)
    settings_model: ClassVar[type[BaseModel]] = EcsSettings

    def __init__(self, settings: EcsSettings | None = None) -> None:
        self.settings = settings or EcsSettings()
        self.clients = AwsClients(self.settings)
        self.task_definitions = TaskDefinitions(self.settings.revision_search_depth)
        self.subnets = Subnets()
        s = self.settings
        # Paced at the account's launch quota, so a backlog drains at the quota instead of bouncing off it;
        # a throttle that gets through botocore's own retries halves the pace, which then grows back in ~5 s.
        self.launches = Pacers(PacerSettings(initial_rate=s.launch_rate_per_s, min_rate=s.launch_rate_per_s / 20,
                                             max_rate=s.launch_rate_per_s, burst=s.launch_burst,
                                             increase_per_s=s.launch_rate_per_s / 10, decrease_cooldown_s=1.0))

    # -- pure --------------------------------------------------------------------------------

    def start_timeout_s(self, configuration: EcsJobConfiguration) -> float | None:
        return self.own(configuration).task_start_timeout_seconds

    def resources(self, configuration: EcsJobConfiguration) -> ResourceRequest:
        return validation.resources(self.own(configuration))

    def validate(self, configuration: EcsJobConfiguration) -> None:
        validation.validate(self.own(configuration))

    def submit_backlog_s(self) -> float:
        return self.launches.backlog_s()

    @classmethod
    def managed_allocation(cls, configuration: EcsJobConfiguration, allocation: Any) -> EcsJobConfiguration:
        """Task size and ephemeral storage (21-200 GiB; under 21: Fargate's 20). On Fargate the largest size
        it offers within the allocation (a cap of 1 vCPU keeps 8 GiB of the 16: Fargate's most for 1 vCPU)."""
        cpu, memory, disk = int(allocation.vcpu * 1024), allocation.memory_mib, allocation.ephemeral_storage_gib
        if validation.is_fargate(configuration):
            sizes = validation.FARGATE_MEMORY
            cpu = max((units for units in sizes if units <= cpu), default=min(sizes))
            memory = max((mib for mib in sizes[cpu] if mib <= memory), default=min(sizes[cpu]))
        return configuration.model_copy(update={"cpu": cpu, "memory": memory,
                                                "ephemeral_storage": disk if disk >= 21 else None})

    # -- submit ----------------------------------------------------------------------------------

    async def submit(self, request: SubmitRequest) -> Submission:
        cfg = self.own(request.configuration)
        validation.validate(cfg)
        key, creds = self.clients.resolve(cfg.aws_credentials)
        ecs = await self.clients.client("ecs", creds)
        taskdef, spec = await self._task_definition(cfg, request.pool, key, ecs)
        network = None
        if taskdef.awsvpc:
            network = await self.subnets.network(cfg, self.settings, key, lambda: self.clients.client("ec2", creds))
        run = build_run_task(cfg, request, taskdef, network, cfg.cluster or self.settings.cluster)
        check_model("RunTask", run.request, "task_run_request")
        pacer = self.launches(key, ecs.meta.region_name)
        await pacer.acquire()
        try:
            submission = await self._run_task(ecs, run, creds)
        except ThrottledError:
            pacer.throttled()
            raise
        except SubmissionRejected as exc:
            if spec is not None and _task_definition_gone(exc):
                self.task_definitions.forget(key, spec)  # deregistered behind our back: register again
                raise TransientProviderError(f"{exc.message}; the cached revision is dropped", code=exc.code) from None
            raise
        pacer.succeeded()
        return submission

    async def find(self, request: SubmitRequest) -> Submission | None:
        """The task an earlier submit started: ListTasks by ``startedBy`` (the attempt id), running then stopped.

        ECS keeps stopped tasks listable for about an hour; older ones are not found. ECS documents
        startedBy as a filter to use alone: the first query has no other filter (desired status
        RUNNING is the default), the second adds desiredStatus=STOPPED, and is skipped with a warning
        if ECS refuses that combination.
        """
        cfg = self.own(request.configuration)
        _, creds = self.clients.resolve(cfg.aws_credentials)
        ecs = await self.clients.client("ecs", creds)
        cluster = cfg.cluster or self.settings.cluster or "default"
        started_by = naming.started_by(request.attempt_id)
        for extra in ({}, {"desiredStatus": "STOPPED"}):
            try:
                with aws_errors("ListTasks"):
                    listed = await ecs.list_tasks(cluster=cluster, startedBy=started_by, **extra)
            except PermanentProviderError as exc:
                if not extra or exc.code != "InvalidParameterException":
                    raise
                logger.warning("cannot list stopped tasks of flow run %s: %s", request.flow_run_id, exc)
                return None
            arns = listed.get("taskArns") or []
            if arns:
                cluster_arn = naming.cluster_of_task(arns[0], cluster)
                return Submission(infrastructure_id=naming.infrastructure_id(cluster_arn, arns[0]), created=False)
        return None

    async def _task_definition(
        self, cfg: EcsJobConfiguration, pool: str, key: str, ecs: Any
    ) -> tuple[TaskDefinitionInfo, Optional[TaskDefinitionSpec]]:
        if cfg.task_definition_arn:
            info = await self.task_definitions.existing(ecs, key, cfg.task_definition_arn, cfg.container_name)
            return info, None
        spec = build_task_definition(cfg, pool, ecs.meta.region_name)
        if not self.task_definitions.is_cached(key, spec):
            check_model("RegisterTaskDefinition", spec.request, "task_definition")
        return await self.task_definitions.for_spec(ecs, key, spec), spec

    async def _run_task(self, ecs: Any, run: RunTaskSpec, creds: AwsCredentials) -> Submission:
        sent_at = time.time()
        with aws_errors("RunTask", SubmissionRejected, secrets=(*run.secrets, *creds.secret_values())):
            try:
                answer = await ecs.run_task(**run.request)
            except ClientError as exc:
                adopted = _conflicting_task(exc, run.request.get("cluster") or "default")
                if adopted is None:
                    raise
                logger.info("RunTask clientToken already used: adopting %s", adopted)
                return Submission(infrastructure_id=adopted, created=False)
        tasks = answer.get("tasks") or []
        if not tasks:
            raise mapping.run_task_failure(answer.get("failures") or [])
        task = tasks[0]
        created_at = task.get("createdAt")
        replayed = created_at is not None and created_at.timestamp() < sent_at - REPLAY_MARGIN_S
        return Submission(infrastructure_id=naming.infrastructure_id(task["clusterArn"], task["taskArn"]),
                          created=not replayed)

    # -- observe ---------------------------------------------------------------------------------

    async def status_many(self, runs: Sequence[RunRef]) -> list[InfraStatus]:
        results, batches = self._batches(runs)
        outcomes = await asyncio.gather(*(self._describe(*b) for b in batches), return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        for outcome in failed:
            if not isinstance(outcome, ProviderError):
                raise outcome
        if failed and len(failed) == len(batches) and all(r is None for r in results) and not _all_not_found(failed):
            raise failed[0]  # nothing could be observed: let the dispatcher retry the whole call
        for (_, _, batch), outcome in zip(batches, outcomes, strict=True):
            for item, status in zip(batch, _batch_statuses(batch, outcome), strict=True):
                results[item.index] = status
        return [status for status in results if status is not None]  # every index is filled above

    def watch_batch(self, run: RunRef) -> WatchBatch | None:
        """One DescribeTasks answers for up to ``describe_batch_size`` tasks of one cluster and credential set."""
        try:
            cluster, _ = naming.parse_infrastructure_id(run.infrastructure_id)
            key, _ = self.clients.resolve(self.own(run.configuration).aws_credentials)
        except (ValueError, ProviderError):
            return None  # not ours: status_many answers it without a call
        return WatchBatch(key=f"ecs|{key}|{cluster}", size=self.settings.describe_batch_size)

    def _batches(
        self, runs: Sequence[RunRef]
    ) -> tuple[list[Optional[InfraStatus]], list[tuple[AwsCredentials, str, list[_Observed]]]]:
        """Runs grouped by (credential set, cluster) in DescribeTasks-sized batches; ids that are not ours answered."""
        results: list[Optional[InfraStatus]] = [None] * len(runs)
        groups: dict[tuple[str, str], list[_Observed]] = defaultdict(list)
        credentials: dict[str, AwsCredentials] = {}
        for index, run in enumerate(runs):
            try:
                cluster, task_arn = naming.parse_infrastructure_id(run.infrastructure_id)
                cfg = self.own(run.configuration)
            except (ValueError, InvalidJobConfiguration) as exc:
                results[index] = InfraStatus.not_found(run.infrastructure_id, f"not an ECS task of ours: {exc}")
                continue
            key, creds = self.clients.resolve(cfg.aws_credentials)
            credentials[key] = creds
            groups[(key, cluster)].append(_Observed(index=index, task_arn=task_arn, infrastructure_id=run.infrastructure_id,
                                                    container_name=cfg.effective_container_name))
        size = self.settings.describe_batch_size
        batches = [(credentials[key], cluster, batch) for (key, cluster), items in groups.items()
                   for batch in naming.chunks(items, size)]
        return results, batches

    async def _describe(self, creds: AwsCredentials, cluster: str, batch: list[_Observed]) -> list[InfraStatus]:
        ecs = await self.clients.client("ecs", creds)
        arns = list(dict.fromkeys(item.task_arn for item in batch))
        with aws_errors("DescribeTasks"):
            answer = await ecs.describe_tasks(cluster=cluster, tasks=arns)
        tasks = {task["taskArn"]: task for task in answer.get("tasks") or []}
        failures = {failure.get("arn"): failure for failure in answer.get("failures") or []}
        statuses = []
        for item in batch:
            if item.task_arn in tasks:
                statuses.append(mapping.task_status(tasks[item.task_arn], item.infrastructure_id, item.container_name))
            elif item.task_arn in failures:
                statuses.append(mapping.failure_status(failures[item.task_arn], item.infrastructure_id))
            else:
                statuses.append(InfraStatus.not_found(item.infrastructure_id, "absent from the DescribeTasks answer"))
        return statuses

    # -- stop and logs ---------------------------------------------------------------------------

    async def stop(self, run: RunRef, reason: str) -> None:
        try:
            cluster, task_arn = naming.parse_infrastructure_id(run.infrastructure_id)
        except ValueError:
            logger.warning("not stopping %r: not an ECS infrastructure id", run.infrastructure_id)
            return
        _, creds = self.clients.resolve(self.own(run.configuration).aws_credentials)
        ecs = await self.clients.client("ecs", creds)
        try:
            with aws_errors("StopTask"):
                await ecs.stop_task(cluster=cluster, task=task_arn, reason=reason[:STOP_REASON_MAX])
        except ProviderError as exc:
            if not is_not_found(exc):
                raise
            logger.info("ECS task %s is already gone: %s", task_arn, exc)

    async def last_log_lines(self, run: RunRef, limit: int = 20) -> list[str]:
        """The newest lines of the flow container's CloudWatch stream (best effort: [] on any failure)."""
        limit = min(limit, self.settings.log_lines_on_crash)
        try:
            cfg = self.own(run.configuration)
            _, task_arn = naming.parse_infrastructure_id(run.infrastructure_id)
            key, creds = self.clients.resolve(cfg.aws_credentials)
            ecs = await self.clients.client("ecs", creds)
            if cfg.task_definition_arn:
                info = await self.task_definitions.existing(ecs, key, cfg.task_definition_arn, cfg.container_name)
                target = info.log_target
            else:
                target = log_target_for(cfg, ecs.meta.region_name)
            if target is None or limit <= 0:
                return []
            if target.region and target.region != creds.region_name:
                creds = creds.model_copy(update={"region_name": target.region})
            logs = await self.clients.client("logs", creds)
            with aws_errors("logs GetLogEvents"):
                answer = await logs.get_log_events(
                    logGroupName=target.group, logStreamName=target.stream(task_arn), limit=limit, startFromHead=False
                )
        except (ProviderError, ValueError) as exc:
            logger.info("no log lines for %s: %s", run.infrastructure_id, exc)
            return []
        return [event.get("message", "") for event in answer.get("events") or []][-limit:]

    async def check_settings(self) -> list[SettingsFinding]:
        return await check_ecs_settings(self.settings)

    async def aclose(self) -> None:
        await self.clients.aclose()


def _batch_statuses(batch: list[_Observed], outcome: Any) -> list[InfraStatus]:
    if not isinstance(outcome, ProviderError):
        return outcome
    if is_not_found(outcome):  # the cluster is gone, and its tasks with it
        return [InfraStatus.not_found(item.infrastructure_id, str(outcome)) for item in batch]
    return [InfraStatus.unobserved(item.infrastructure_id, outcome) for item in batch]


def _all_not_found(errors: list[BaseException]) -> bool:
    return all(isinstance(e, ProviderError) and is_not_found(e) for e in errors)


def _conflicting_task(exc: ClientError, cluster: str) -> Optional[str]:
    """The task a clientToken already started (ECS ConflictException lists it), as an infrastructure id."""
    if exc.response.get("Error", {}).get("Code") != "ConflictException":
        return None
    arns = exc.response.get("resourceIds") or []
    if not arns:
        return None
    return naming.infrastructure_id(naming.cluster_of_task(arns[0], cluster), arns[0])


def _task_definition_gone(exc: ProviderError) -> bool:
    text = exc.message.lower().replace(" ", "")
    return "taskdefinition" in text and ("inactive" in text or "notfound" in text)


