"""What the provider contract suite needs of each provider: a harness, found by the provider's kind.

A harness starts whatever its provider needs (an emulator, a state directory),
builds job configurations for a command, and can count what was started. Each
registered provider that has landed has one, as ``Harness`` (a ``ProviderHarness``
subclass) in ``tests/providers/harnesses/<kind>.py`` (``-`` in a kind becomes
``_``); every test of ``test_contract.py`` runs against each, and a test fails for
a provider without one.
"""

from __future__ import annotations

import abc
import importlib
import shlex
import sys
import textwrap
import uuid
from collections.abc import Iterable
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

    def request(self, command: str, flow_run_id: UUID | None = None, attempt_id: UUID | None = None) -> SubmitRequest:
        """A request for one attempt; by default a run's first attempt, named as the dispatcher names them."""
        flow_run_id = flow_run_id or uuid.uuid4()
        attempt_id = attempt_id or uuid.uuid4()
        return SubmitRequest(
            flow_run_id=flow_run_id, attempt_id=attempt_id,
            idempotency_key=f"prefect-{attempt_id.hex}",
            workspace="contract",
            pool=f"{self.name}-pool",
            configuration=self.configuration(command),
            limits=RunLimits(max_runtime_s=300),
        )

    @staticmethod
    def ref(request: SubmitRequest, submission: Submission) -> RunRef:
        return RunRef(flow_run_id=request.flow_run_id, attempt_id=request.attempt_id, infrastructure_id=submission.infrastructure_id,
                      configuration=request.configuration)


def harness_module(kind: str) -> str:
    """Where the harness of provider ``kind`` lives: ``tests/providers/harnesses/<kind>.py``."""
    return f"tests.providers.harnesses.{kind.replace('-', '_')}"


def discover_harnesses(kinds: Iterable[str]) -> tuple[dict[str, type[ProviderHarness]], list[str]]:
    """The ``Harness`` class of each kind, and the kinds that have none."""
    found: dict[str, type[ProviderHarness]] = {}
    missing: list[str] = []
    for kind in kinds:
        try:
            module = importlib.import_module(harness_module(kind))
        except ModuleNotFoundError as exc:
            if exc.name != harness_module(kind):
                raise  # the harness exists and imports something missing: its own error
            missing.append(kind)
            continue
        harness = module.Harness
        assert harness.name == kind, f"{harness_module(kind)}.Harness.name is {harness.name!r}, not {kind!r}"
        found[kind] = harness
    return found, missing
