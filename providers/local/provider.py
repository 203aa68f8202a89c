"""The local provider: each flow run is a subprocess on the dispatcher's host.

Every attempt of a run gets a directory ``state_dir/<attempt_id>`` and a detached supervisor
process (:mod:`providers.local.supervisor`) that starts the command, enforces its
limits and records its exit there. All state lives in those files, so a restarted
dispatcher finds its runs again and learns how they ended while it was away.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel

from providers.base import (
    InfraPhase,
    InfraStatus,
    Provider,
    ResourceRequest,
    RunRef,
    SettingsFinding,
    Submission,
    SubmitRequest,
)
from providers.commands import command_argv
from providers.errors import InvalidJobConfiguration, ProviderError, SubmissionRejected
from providers.local import launch, packages, prune, warm
from providers.local import runs as local_runs
from providers.local.checks import check_local_settings
from providers.local.config import LocalJobConfiguration, LocalSettings, LocalVariables
from providers.local.oserrors import provider_errors
from providers.local.rundir import OUTPUT_LOG

logger = logging.getLogger(__name__)

MIN_MEMORY_MIB = 64


class LocalProvider(Provider[LocalJobConfiguration]):
    """Runs flow runs as supervised local subprocesses (the default when there is no cloud)."""

    kind = "local"
    job_configuration = LocalJobConfiguration
    job_variables = LocalVariables
    pool_types: ClassVar[tuple[str, ...]] = ("local:push",)
    secret_fields: ClassVar[tuple[str, ...]] = ()  # env only, which is always secret-bearing
    settings_model: ClassVar[type[BaseModel]] = LocalSettings

    def __init__(self, settings: LocalSettings | None = None) -> None:
        self.settings = settings or LocalSettings()
        self.hostname = socket.gethostname()
        self._orphans = local_runs.OrphanTerminator(self.settings.stop_grace_s)
        self._prune_failing = False  # log a failing prune once, not every minute
        # Started on the first warm run (never by merely constructing the provider, e.g. for `check`).
        self._zygote = warm.Zygote(self.settings.state_dir) if self.settings.warm_engine else None

    # -- pure --------------------------------------------------------------------------

    def resources(self, configuration: LocalJobConfiguration) -> ResourceRequest:
        configuration = self.own(configuration)
        return ResourceRequest(
            vcpu=configuration.cpu,
            memory_mib=configuration.memory,
            fields={"vcpu": "cpu", "memory_mib": "memory"},
        )

    def validate(self, configuration: LocalJobConfiguration) -> None:
        configuration = self.own(configuration)
        cpu, memory, working_dir = configuration.cpu, configuration.memory, configuration.working_dir
        if cpu is not None and not (math.isfinite(cpu) and cpu > 0):
            raise InvalidJobConfiguration("cpu", cpu, "a number of vCPUs greater than 0")
        if memory is not None and memory < MIN_MEMORY_MIB:
            raise InvalidJobConfiguration("memory", memory, f"at least {MIN_MEMORY_MIB} MiB")
        if working_dir is not None and not _is_directory(working_dir):
            allowed = "an existing directory on the dispatcher's host"
            raise InvalidJobConfiguration("working_dir", str(working_dir), allowed)
        command_argv(configuration)

    @classmethod
    def managed_allocation(cls, configuration: LocalJobConfiguration, allocation: Any) -> LocalJobConfiguration:
        """The supervisor's own limits: CPU pinning and the address-space cap (no disk limit)."""
        return configuration.model_copy(update={"cpu": allocation.vcpu, "memory": allocation.memory_mib})

    # -- runs --------------------------------------------------------------------------

    async def submit(self, request: SubmitRequest) -> Submission:
        return await asyncio.to_thread(self._submit_blocking, request)

    async def find(self, request: SubmitRequest) -> Submission | None:
        with provider_errors(f"look up flow run {request.flow_run_id}"):
            record = await asyncio.to_thread(launch.read_supervisor_record, self._run_dir(request.attempt_id))
        return None if record is None else Submission(infrastructure_id=self._infrastructure_id(record), created=False)

    async def status_many(self, runs: Sequence[RunRef]) -> list[InfraStatus]:
        return await asyncio.to_thread(lambda: [self._status_blocking(run) for run in runs])

    async def stop(self, run: RunRef, reason: str) -> None:
        if not self._is_local(run.infrastructure_id):
            logger.warning("not stopping %s: it runs on another host", run.infrastructure_id)
            return
        with provider_errors(f"stop flow run {run.flow_run_id}"):
            await asyncio.to_thread(local_runs.request_stop, self._run_dir(run.attempt_id), reason, self._orphans)

    async def check_settings(self) -> list[SettingsFinding]:
        return await check_local_settings(self.settings)

    async def last_log_lines(self, run: RunRef, limit: int = 20) -> list[str]:
        if not self._is_local(run.infrastructure_id):
            return []
        try:
            return await asyncio.to_thread(local_runs.tail_lines, self._run_dir(run.attempt_id) / OUTPUT_LOG, limit)
        except OSError as exc:  # best effort: a missing tail must not hide the run's real outcome
            logger.debug("could not read the output of flow run %s: %s", run.flow_run_id, exc.strerror)
            return []

    async def housekeeping(self) -> None:
        """Delete run directories whose run ended more than ``retention_s`` ago."""
        state_dir, retention_s = self.settings.state_dir, self.settings.retention_s
        try:
            result = await asyncio.to_thread(prune.prune_run_dirs, state_dir, retention_s)
        except OSError as exc:
            self._log_prune_failure(f"{state_dir}: {exc.strerror or type(exc).__name__}")
            return
        if result.removed:
            logger.info("deleted %d local run directories that ended over %g s ago", len(result.removed), retention_s)
        if result.failures:
            self._log_prune_failure("; ".join(result.failures[:5]))
        elif self._prune_failing:
            self._prune_failing = False
            logger.info("pruning local run directories works again")

    async def aclose(self) -> None:
        """Stop the warm engine's zygote; runs it started go on (they are detached, like cold ones)."""
        if self._zygote is not None:
            await asyncio.to_thread(self._zygote.close)

    def _log_prune_failure(self, what: str) -> None:
        level = logging.DEBUG if self._prune_failing else logging.WARNING
        self._prune_failing = True
        logger.log(level, "could not prune local run directories: %s", what)

    # -- blocking helpers, run in a worker thread ------------------------------------------

    def _submit_blocking(self, request: SubmitRequest) -> Submission:
        configuration = self.own(request.configuration)
        self.validate(configuration)  # stats working_dir, hence in the worker thread
        run_dir = self._run_dir(request.attempt_id)
        spec = self._spec(request, configuration, run_dir)
        if spec["warm"] and not (self._zygote is not None and self._zygote.ready()):
            spec["warm"] = False  # no usable zygote: start cold rather than wait or fail
        with provider_errors(f"start flow run {request.flow_run_id}", permanent=SubmissionRejected):
            record = launch.create_run(run_dir, spec, self.settings.python, self.hostname, self._zygote)
            if record is not None:
                logger.info("started local supervisor %s for flow run %s", record["pid"], spec["flow_run_id"])
                return Submission(infrastructure_id=self._infrastructure_id(record), created=True)
            record = launch.existing_run(run_dir)
            return Submission(infrastructure_id=self._infrastructure_id(record), created=False)

    def _status_blocking(self, run: RunRef) -> InfraStatus:
        if not self._is_local(run.infrastructure_id):
            return InfraStatus(
                infrastructure_id=run.infrastructure_id,
                phase=InfraPhase.NOT_FOUND,
                native_state="OTHER_HOST",
                reason=f"this local run belongs to another host; this dispatcher runs on {self.hostname!r}",
            )
        try:
            with provider_errors(f"observe flow run {run.flow_run_id}"):
                return local_runs.observe(self._run_dir(run.attempt_id), run.infrastructure_id, self._orphans)
        except ProviderError as exc:
            # One unreadable run directory must not hide the status of every other run.
            logger.warning("could not observe flow run %s: %s", run.flow_run_id, exc)
            return InfraStatus(
                infrastructure_id=run.infrastructure_id,
                phase=InfraPhase.UNKNOWN,
                native_state="UNREADABLE",
                reason=str(exc),
            )

    def _spec(self, request: SubmitRequest, configuration: LocalJobConfiguration, run_dir: Path) -> dict[str, Any]:
        # pip_packages (prefect:managed): the command runs in its package set's cached environment (cold).
        argv = packages.in_environment(command_argv(configuration), getattr(configuration, "pip_packages", None),
                                       self.settings.envs_dir)
        env = launch.flow_run_env(configuration.env, memory_capped=configuration.memory is not None)
        return {
            "flow_run_id": str(request.flow_run_id),
            "attempt_id": str(request.attempt_id),
            "argv": argv,
            "env": env,
            # Forked from the pre-imported engine when that runs exactly what argv would (else cold).
            "warm": self._zygote is not None and warm.is_warm_eligible(argv, env),
            "cwd": str(configuration.working_dir or run_dir),
            "memory_mib": configuration.memory,
            "cpu": configuration.cpu,
            "max_runtime_s": request.limits.max_runtime_s,
            "stop_grace_s": self.settings.stop_grace_s,
            "stream_output": configuration.stream_output,
            # Handed to the supervisor over a pipe, never written: it masks them in output.log.
            "secrets": request.secrets.revealed(),
        }

    def _run_dir(self, attempt_id: UUID) -> Path:
        # Per attempt: a retry from Prefect gets a directory (and a process) of its own. Ledgers
        # from before attempts use the flow run id as the first attempt's id: same directories.
        return self.settings.state_dir / str(attempt_id)

    def _infrastructure_id(self, record: dict[str, Any]) -> str:
        # hostname:pid, like Prefect's Process worker, so the id is meaningful to humans too.
        return f"{record.get('hostname', self.hostname)}:{record['pid']}"

    def _is_local(self, infrastructure_id: str) -> bool:
        host, _, _pid = infrastructure_id.rpartition(":")
        return host == self.hostname


def _is_directory(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. a parent we may not search: not usable as a working directory either
        return False


