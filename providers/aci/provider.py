"""The ACI provider: each attempt of a flow run is one container group, created directly (no ARM deployment).

Submission: a GET of the attempt's group name (a re-driven submission finds and adopts
the group an earlier attempt created, because a PUT over an existing group would
redeploy, i.e. restart, it), then one paced PUT whose long-running operation is not
waited on (the watcher follows the group). Observation: ``watch.py`` (List per resource
group, GETs within a read budget). Stop: POST stop; the group is deleted once the
dispatcher has recorded the run (``release``), paced by ACI's delete quota
(``cleanup.py``), unless ``keep_container_group``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Optional

from azure.core.rest import HttpRequest
from pydantic import BaseModel

from providers.aci import naming, validation
from providers.aci.checks import check_aci_settings
from providers.aci.cleanup import Deleter, OrphanSweep
from providers.aci.clients import AzureClients
from providers.aci.config import AciJobConfiguration, AciSettings, AciVariables
from providers.aci.credentials import AzureContainerInstanceCredentials
from providers.aci.errors import AzureThrottled, azure_errors, is_not_found
from providers.aci.requests import build_container_group, location_from_template
from providers.aci.scopes import QuotaPacers, Scope, Target
from providers.aci.watch import StatusBook
from providers.base import (
    InfraPhase, InfraStatus, Provider, ResourceRequest, RunRef, SettingsFinding, Submission, SubmitRequest, WatchBatch,
)
from providers.errors import InvalidJobConfiguration, ProviderError, SubmissionRejected

logger = logging.getLogger(__name__)
RESOURCES_API_VERSION = "2021-04-01"


class AciProvider(Provider[AciJobConfiguration]):
    """Runs flow runs as Azure container groups; one instance serves every azure-container-instance:push pool."""

    kind = "aci"
    job_configuration = AciJobConfiguration
    job_variables = AciVariables
    pool_types: ClassVar[tuple[str, ...]] = ("azure-container-instance:push",)
    # A service principal's secret, a registry password, and the subscription id (a SecretStr in prefect-azure).
    secret_fields: ClassVar[tuple[str, ...]] = ("aci_credentials", "image_registry", "subscription_id")
    settings_model: ClassVar[type[BaseModel]] = AciSettings

    def __init__(self, settings: AciSettings | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or AciSettings()
        self.clients = AzureClients(self.settings)
        self.pacers = QuotaPacers(self.settings, clock)  # the clock: tests let quota windows pass
        self._credentials: dict[str, Any] = {}
        self._locations: dict[tuple[str, str], str] = {}
        self._location_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._on_the_way: Counter[str] = Counter()  # submissions per subscription not yet at the create pacer
        self.book = StatusBook(self.pacers, self.settings.refresh_after_s, self._client_of,
                               self.settings.list_interval_s)
        self.deleter = Deleter(self.pacers, self._client_of, self.book)
        self.orphans = OrphanSweep(self.book, self.deleter, self.settings.orphan_sweep_interval_s,
                                   self.settings.orphan_grace_s)
        if self.settings.subscription_id and self.settings.resource_group_name:
            # The operator's own resource group is swept from the start, before any run touches it.
            block = AzureContainerInstanceCredentials()
            key = self.clients.key(block, self.settings.subscription_id)
            self._credentials[key] = block
            self.orphans.remember(Scope(key=key, subscription=self.settings.subscription_id,
                                        resource_group=self.settings.resource_group_name))

    # -- pure --------------------------------------------------------------------------------

    def start_timeout_s(self, configuration: AciJobConfiguration) -> float | None:
        return self.own(configuration).task_start_timeout_seconds

    def resources(self, configuration: AciJobConfiguration) -> ResourceRequest:
        return validation.resources(self.own(configuration))

    def validate(self, configuration: AciJobConfiguration) -> None:
        validation.validate(self.own(configuration), self.settings)

    @classmethod
    def managed_allocation(cls, configuration: AciJobConfiguration, allocation: Any) -> AciJobConfiguration:
        """Cores and GB of the container; ACI's disk is not configurable (the allocation's disk is not applied)."""
        return configuration.model_copy(update={"cpu": allocation.vcpu, "memory": allocation.memory_mib / 1024})

    def submit_backlog_s(self) -> float:
        """The create pacer's wait, counting submissions still on their way to it (their adopt check)."""
        waits = [self.pacers.creates(sub).backlog_s(ahead=n) for sub, n in self._on_the_way.items()]
        return max([self.pacers.creates.backlog_s(), *waits])

    # -- scopes and clients ----------------------------------------------------------------------

    def _scope(self, cfg: AciJobConfiguration) -> Scope:
        subscription = validation.subscription_of(cfg, self.settings)
        key = self.clients.key(cfg.aci_credentials, subscription)
        self._credentials.setdefault(key, cfg.aci_credentials)
        scope = Scope(key=key, subscription=subscription,
                      resource_group=validation.resource_group_of(cfg, self.settings))
        self.orphans.remember(scope)
        return scope

    async def _client_of(self, scope: Scope) -> Any:
        return await self.clients.client(self._credentials[scope.key], scope.subscription)

    def _target(self, run: RunRef) -> Target:
        _, name = naming.parse_infrastructure_id(run.infrastructure_id)
        return Target(scope=self._scope(self.own(run.configuration)), name=name,
                      infrastructure_id=run.infrastructure_id)

    # -- submit ----------------------------------------------------------------------------------

    async def submit(self, request: SubmitRequest) -> Submission:
        cfg = self.own(request.configuration)
        validation.validate(cfg, self.settings)
        scope = self._scope(cfg)
        self._on_the_way[scope.subscription] += 1
        try:
            return await self._submit(request, cfg, scope)
        finally:
            self._on_the_way[scope.subscription] -= 1
            if self._on_the_way[scope.subscription] <= 0:
                del self._on_the_way[scope.subscription]

    async def _submit(self, request: SubmitRequest, cfg: AciJobConfiguration, scope: Scope) -> Submission:
        name = naming.group_name(request.attempt_id)
        target = Target(scope=scope, name=name, infrastructure_id=naming.infrastructure_id(request.flow_run_id, name))
        if await self._exists(target):
            logger.info("container group %s already exists: adopting it (no second PUT)", name)
            return Submission(infrastructure_id=target.infrastructure_id, created=False)
        location = await self._location(cfg, scope)
        group = build_container_group(cfg, request, location)
        secrets = [*request.secrets.revealed(), *_credential_secrets(cfg)]
        client = await self._client_of(scope)
        pacer = self.pacers.creates(scope.subscription)
        self._on_the_way[scope.subscription] -= 1  # from here on the pacer counts it as waiting
        try:
            await pacer.acquire()
        finally:
            self._on_the_way[scope.subscription] += 1  # balanced by submit's finally
        try:
            with azure_errors("create container group", SubmissionRejected, secrets):
                # polling=False: one PUT, no long-running-operation polls; the watcher follows the group.
                await client.container_groups.begin_create_or_update(scope.resource_group, name, group, polling=False)
        except AzureThrottled as exc:
            exc.slow(pacer)
            raise
        pacer.succeeded()
        return Submission(infrastructure_id=target.infrastructure_id, created=True)

    async def find(self, request: SubmitRequest) -> Submission | None:
        cfg = self.own(request.configuration)
        name = naming.group_name(request.attempt_id)
        target = Target(scope=self._scope(cfg), name=name,
                        infrastructure_id=naming.infrastructure_id(request.flow_run_id, name))
        if await self._exists(target):
            return Submission(infrastructure_id=target.infrastructure_id, created=False)
        return None

    async def _exists(self, target: Target) -> bool:
        # Not paced by the watcher's read budget: these GETs come one per create, which its own quota bounds.
        client = await self._client_of(target.scope)
        pacer = self.pacers.reads(target.scope.subscription)
        try:
            with azure_errors("get container group"):
                await client.container_groups.get(target.scope.resource_group, target.name)
        except AzureThrottled as exc:
            exc.slow(pacer)
            raise
        except ProviderError as exc:
            if is_not_found(exc) and exc.code != "ResourceGroupNotFound":
                return False
            raise
        return True

    async def _location(self, cfg: AciJobConfiguration, scope: Scope) -> str:
        """The template's literal location, the settings', else the resource group's (read once)."""
        fixed = location_from_template(cfg) or self.settings.location
        if fixed:
            return fixed
        key = (scope.key, scope.resource_group.lower())
        async with self._location_locks.setdefault(key, asyncio.Lock()):  # one look-up for concurrent submits
            if key not in self._locations:
                await self._read_location(scope, key)
        return self._locations[key]

    async def _read_location(self, scope: Scope, key: tuple[str, str]) -> None:
        client = await self._client_of(scope)
        url = (f"/subscriptions/{scope.subscription}/resourcegroups/{scope.resource_group}"
               f"?api-version={RESOURCES_API_VERSION}")
        with azure_errors("get resource group", SubmissionRejected):
            response = await client._send_request(HttpRequest("GET", url))  # the SDK's own pipeline and auth
            response.raise_for_status()
            self._locations[key] = str(response.json()["location"])

    # -- observe ---------------------------------------------------------------------------------

    def watch_batch(self, run: RunRef) -> WatchBatch | None:
        """A resource group is listed as a whole and its GETs share the subscription's read budget: one
        watcher per resource group makes the calls one replica would, and keeps within that budget."""
        try:
            scope = self._target(run).scope
        except (ValueError, ProviderError):
            return None
        return WatchBatch(key=f"aci|{scope.key}|{scope.resource_group}", size=None)

    async def status_many(self, runs: Sequence[RunRef]) -> list[InfraStatus]:
        results: list[Optional[InfraStatus]] = [None] * len(runs)
        targets: list[tuple[int, Target]] = []
        for index, run in enumerate(runs):
            try:
                targets.append((index, self._target(run)))
            except (ValueError, InvalidJobConfiguration) as exc:
                results[index] = InfraStatus(infrastructure_id=run.infrastructure_id, phase=InfraPhase.NOT_FOUND,
                                             native_state="NotOurs", reason=f"not an ACI container group of ours: {exc}")
        if targets:
            observed = await self.book.observe([t for _, t in targets])
            for (index, _), status in zip(targets, observed, strict=True):
                results[index] = status
        return [status for status in results if status is not None]

    # -- stop, logs, release -----------------------------------------------------------------------

    async def stop(self, run: RunRef, reason: str) -> None:
        try:
            target = self._target(run)
        except ValueError:
            logger.warning("not stopping %r: not an ACI infrastructure id", run.infrastructure_id)
            return
        seen = self.book.seen.get(target.infrastructure_id)
        if seen is not None and seen.status.phase == InfraPhase.EXITED:
            return  # already ended: a stop would only relabel it Stopped
        client = await self._client_of(target.scope)
        try:
            with azure_errors("stop container group"):
                await client.container_groups.stop(target.scope.resource_group, target.name)
        except ProviderError as exc:
            if not is_not_found(exc):
                raise
            logger.info("container group %s is already gone: %s", target.name, exc)
        self.book.invalidate(target.infrastructure_id)

    async def last_log_lines(self, run: RunRef, limit: int = 20) -> list[str]:
        """The container's last log lines (ACI keeps the last 1000 lines / 16 KB of an ended container)."""
        limit = min(limit, self.settings.log_lines_on_crash)
        if limit <= 0:
            return []
        try:
            target = self._target(run)
            client = await self._client_of(target.scope)
            await self.pacers.reads(target.scope.subscription).acquire()
            with azure_errors("list container logs"):
                logs = await client.containers.list_logs(target.scope.resource_group, target.name,
                                                         naming.CONTAINER_NAME, tail=limit)
        except (ProviderError, ValueError) as exc:
            logger.info("no log lines for %s: %s", run.infrastructure_id, exc)
            return []
        return (logs.content or "").splitlines()[-limit:]

    async def release(self, run: RunRef) -> None:
        """Delete the group now that the run is recorded (unless keep_container_group); never raises."""
        try:
            target = self._target(run)
            keep = self.own(run.configuration).keep_container_group
        except (ValueError, InvalidJobConfiguration):
            return
        self.book.forget(target.infrastructure_id)
        if keep:
            return
        self.deleter.enqueue(target)
        await self.deleter.drain()

    async def housekeeping(self) -> None:
        try:
            await self.orphans.sweep(live=set(self.book.seen))
            await self.deleter.drain()
        except Exception:  # noqa: BLE001 - housekeeping never raises; the next sweep retries
            logger.exception("ACI housekeeping failed")

    async def check_settings(self) -> list[SettingsFinding]:
        return check_aci_settings(self.settings)

    async def aclose(self) -> None:
        await self.book.aclose()
        await self.clients.aclose()


def _credential_secrets(cfg: AciJobConfiguration) -> list[str]:
    secret = cfg.aci_credentials.client_secret
    return [secret.get_secret_value()] if secret else []
