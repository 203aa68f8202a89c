"""Harnesses for the provider contract suite: one small class per provider.

A harness starts whatever its provider needs (an emulator, a state directory),
builds job configurations for a command, and can count what was started. To add
a provider to the suite, write a ``ProviderHarness`` subclass and list it in
``HARNESSES``; every test of ``test_contract.py`` then runs against it.
"""

from __future__ import annotations

import abc
import shlex
import sys
import textwrap
import uuid
from pathlib import Path
from typing import ClassVar
from uuid import UUID

from prefect.workers.base import BaseJobConfiguration

from providers.base import Provider, RunLimits, RunRef, Submission, SubmitRequest

PY = shlex.quote(sys.executable)


def python_command(code: str) -> str:
    """A command line that runs ``code`` with this interpreter."""
    return f"{PY} -c {shlex.quote(textwrap.dedent(code))}"


def exiting_command(exit_code: int = 0, sleep_s: float = 0.0) -> str:
    return python_command(f"import sys, time\ntime.sleep({sleep_s})\nprint('contract run', flush=True)\nsys.exit({exit_code})")


class ProviderHarness(abc.ABC):
    """What the contract suite needs to know about one provider."""

    name: ClassVar[str]
    #: Why transient errors cannot be provoked for this provider (None: they can).
    no_fault_injection: ClassVar[str | None] = None

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.provider: Provider

    @abc.abstractmethod
    async def start(self) -> None:
        """Create ``self.provider`` (and whatever it runs against)."""

    async def stop(self) -> None:
        await self.provider.aclose()

    @abc.abstractmethod
    def configuration(self, command: str) -> BaseJobConfiguration:
        """A job configuration that runs ``command``."""

    @abc.abstractmethod
    def unknown_ref(self) -> RunRef:
        """A well-formed reference to infrastructure that does not exist."""

    @abc.abstractmethod
    def started_count(self) -> int:
        """How many pieces of infrastructure (tasks, processes) were started so far."""

    def fail_transiently(self, on: bool) -> None:
        """Make every cloud call fail with a retryable error (or stop doing so)."""
        raise NotImplementedError(self.no_fault_injection)

    def request(self, command: str, flow_run_id: UUID | None = None) -> SubmitRequest:
        flow_run_id = flow_run_id or uuid.uuid4()
        return SubmitRequest(
            flow_run_id=flow_run_id, attempt_id=flow_run_id,
            idempotency_key=f"prefect-{flow_run_id.hex}",
            workspace="contract",
            pool=f"{self.name}-pool",
            configuration=self.configuration(command),
            limits=RunLimits(max_runtime_s=300),
        )

    @staticmethod
    def ref(request: SubmitRequest, submission: Submission) -> RunRef:
        return RunRef(flow_run_id=request.flow_run_id, attempt_id=request.attempt_id, infrastructure_id=submission.infrastructure_id,
                      configuration=request.configuration)


class LocalHarness(ProviderHarness):
    name = "local"
    no_fault_injection = "the local provider has no remote API whose failures could be injected"

    async def start(self) -> None:
        from providers.local import LocalProvider, LocalSettings

        self.state_dir = self.tmp_path / "local-state"
        self.provider = LocalProvider(LocalSettings(state_dir=self.state_dir, stop_grace_s=1))

    def configuration(self, command: str) -> BaseJobConfiguration:
        from providers.local import LocalJobConfiguration

        return LocalJobConfiguration(command=command, memory=None, cpu=None)

    def unknown_ref(self) -> RunRef:
        import socket

        return RunRef(flow_run_id=uuid.uuid4(), attempt_id=uuid.uuid4(), infrastructure_id=f"{socket.gethostname()}:999999",
                      configuration=self.configuration("true"))

    def started_count(self) -> int:
        return sum(1 for _ in self.state_dir.iterdir()) if self.state_dir.exists() else 0


class EcsHarness(ProviderHarness):
    name = "ecs"

    async def start(self) -> None:
        from providers.ecs import EcsProvider, EcsSettings
        from tests.emulators.ecs import EcsEmulator

        self.emulator = EcsEmulator(execute=True, workdir=str(self.tmp_path)).start()
        self.provider = EcsProvider(EcsSettings(max_attempts=2, retry_mode="standard"))

    async def stop(self) -> None:
        await super().stop()
        self.emulator.stop()

    def credentials(self) -> dict:
        return {"aws_access_key_id": "AKIACONTRACT", "aws_secret_access_key": "contract-secret-key",
                "region_name": self.emulator.region,
                "aws_client_parameters": {"endpoint_url": self.emulator.endpoint_url}}

    def configuration(self, command: str) -> BaseJobConfiguration:
        from providers.ecs import EcsJobConfiguration

        return EcsJobConfiguration(
            aws_credentials=self.credentials(), image="python:3.12-slim", command=command,
            network_configuration={"subnets": ["subnet-0contract"]}, env={"PYTHONUNBUFFERED": "1"},
        )

    def unknown_ref(self) -> RunRef:
        prefix = f"arn:aws:ecs:{self.emulator.region}:{self.emulator.account_id}"
        task = f"{prefix}:task/default/{uuid.uuid4().hex}"
        return RunRef(flow_run_id=uuid.uuid4(), attempt_id=uuid.uuid4(), infrastructure_id=f"{prefix}:cluster/default::{task}",
                      configuration=self.configuration("true"))

    def started_count(self) -> int:
        return len(self.emulator.tasks)

    def fail_transiently(self, on: bool) -> None:
        from tests.emulators.ecs import Faults

        self.emulator.faults = Faults(server_error_rate=1.0 if on else 0.0)


HARNESSES: dict[str, type[ProviderHarness]] = {h.name: h for h in (LocalHarness, EcsHarness)}
