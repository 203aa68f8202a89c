"""The Cloud Run jobs of the provider: one per distinct configuration, created once, deleted when idle.

A job's id is the content hash of its body (``requests.build_job``), so every replica
and every restart names the same job for the same configuration: CreateJob answering
409 means "it exists already" and it is used as is. Once created or found, a job is
remembered for the life of the process: steady-state submission is one ``:run``.

Housekeeping deletes our jobs (label ``managed-by=prefect-push-dispatcher``) whose newest
execution ended more than ``job_idle_delete_s`` ago, unless they carry ``keep_job``. It
first checks that no execution of the job still runs (deleting a job deletes its
executions), and deletes with the listed job's ``etag``, so a job that ran again since it
was listed is kept. A workspace thus stays far under the 1,000 jobs per region limit.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from google.cloud import run_v2

from providers.cloud_run.clients import CloudRunClient
from providers.cloud_run.errors import ConflictError
from providers.cloud_run.mapping import _utc
from providers.cloud_run.requests import KEEP_LABEL, MANAGED_LABEL, MANAGED_VALUE, JobSpec
from providers.errors import ProviderError

logger = logging.getLogger(__name__)


class Jobs:
    """Which jobs exist (as far as this process knows), per credential set."""

    def __init__(self) -> None:
        self._known: set[tuple[str, str]] = set()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        #: (credential key, location) pairs that ran jobs: where housekeeping looks.
        self.locations: dict[tuple[str, str], CloudRunClient] = {}
        self.created = 0

    @staticmethod
    def name(parent: str, spec: JobSpec) -> str:
        return f"{parent}/jobs/{spec.job_id}"

    def is_known(self, key: str, name: str) -> bool:
        return (key, name) in self._known

    async def ensure(self, client: CloudRunClient, key: str, parent: str, spec: JobSpec) -> str:
        """The job's name, creating the job the first time (shared by concurrent submissions)."""
        name = self.name(parent, spec)
        self.locations[(key, parent)] = client
        if (key, name) in self._known:
            return name
        async with self._locks.setdefault((key, name), asyncio.Lock()):
            if (key, name) not in self._known:
                try:
                    await client.create_job(parent, spec.job_id, spec.body)
                    self.created += 1
                    logger.info("created Cloud Run job %s", name)
                except ConflictError:
                    logger.debug("Cloud Run job %s exists already: reused", name)  # same id, same content
                self._known.add((key, name))
        return name

    def forget(self, key: str, name: str) -> None:
        """The job is gone (deleted behind our back, or by housekeeping): the next run creates it again."""
        self._known.discard((key, name))

    # -- housekeeping -------------------------------------------------------------------------------

    async def sweep(self, idle_s: float, now: datetime | None = None) -> int:
        """Delete idle jobs of ours in every location used so far; the number deleted."""
        if idle_s <= 0:
            return 0
        now = now or datetime.now(timezone.utc)
        deleted = 0
        for (key, parent), client in list(self.locations.items()):
            try:
                deleted += await self._sweep_location(client, key, parent, now - timedelta(seconds=idle_s))
            except ProviderError as exc:
                logger.warning("Cloud Run housekeeping of %s failed, retried next sweep: %s", parent, exc)
        return deleted

    async def _sweep_location(self, client: CloudRunClient, key: str, parent: str, cutoff: datetime) -> int:
        deleted, token = 0, ""
        while True:
            page = await client.list_jobs(parent, token)
            for job in page.jobs:
                if _idle(job, cutoff) and not await self._busy(client, job.name):
                    if await self._delete(client, job):
                        self.forget(key, job.name)
                        deleted += 1
            token = page.next_page_token
            if not token:
                return deleted

    @staticmethod
    async def _busy(client: CloudRunClient, job_name: str) -> bool:
        token = ""
        while True:
            page = await client.list_executions(job_name, 100, token, status_only=True)
            if any(_utc(ex.completion_time) is None for ex in page.executions):
                return True
            token = page.next_page_token
            if not token:
                return False

    @staticmethod
    async def _delete(client: CloudRunClient, job: run_v2.Job) -> bool:
        try:
            await client.call("DeleteJob", "DELETE", job.name, params={"etag": job.etag} if job.etag else None)
        except ConflictError:
            logger.info("Cloud Run job %s changed since it was listed: kept", job.name)
            return False
        logger.info("deleted idle Cloud Run job %s", job.name)
        return True


def _idle(job: run_v2.Job, cutoff: datetime) -> bool:
    labels = dict(job.labels)
    if labels.get(MANAGED_LABEL) != MANAGED_VALUE or labels.get(KEEP_LABEL) == "true":
        return False
    latest = job.latest_created_execution
    if latest.name:
        ended = _utc(latest.completion_time)
        return ended is not None and ended < cutoff
    created = _utc(job.create_time)
    return created is not None and created < cutoff
