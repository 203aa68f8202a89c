"""``EcsEmulator``: serves the emulated ECS, Logs and EC2 APIs on 127.0.0.1."""

from __future__ import annotations

import os

from ..kit import Emulator, Realism, Request, Response, RunDefaults, poll_until, resolve_realism
from .backend import Backend
from .ec2 import Ec2
from .faults import EcsFaultDice, Faults
from .lifecycle import Timings
from .protocol import JsonProtocol
from .query import QueryProtocol, is_query_request
from .realistic import ECS_PROFILE
from .tasks import Task


class AwsEndpoint:
    """One endpoint for every client: EC2's query protocol by its form body, else AWS JSON 1.1."""

    def __init__(self, json_protocol: JsonProtocol, query_protocol: QueryProtocol):
        self.json, self.query = json_protocol, query_protocol

    def handle(self, request: Request) -> Response:
        return (self.query if is_query_request(request) else self.json).handle(request)


class EcsEmulator(Emulator):
    """An ECS endpoint for boto3/aiobotocore clients: ``endpoint_url=emu.endpoint_url``.

    ``execute=True`` runs each task's essential container command locally
    when the task reaches RUNNING; otherwise a task runs for
    ``default_run_s`` (or its ``EMULATOR_RUN_SECONDS`` env var) and exits with
    ``default_exit_code`` (or ``EMULATOR_EXIT_CODE``). Knobs and introspection
    shared with every emulator (``faults``, ``calls``, ``permissions``,
    ``errors``, ``reset_calls()``, lifecycle) come from the kit's ``Emulator``.
    """

    faults: Faults
    dice: EcsFaultDice

    def __init__(self, region: str = "us-east-1", account_id: str = "123456789012", execute: bool = False,
                 faults: Faults | None = None, *, provisioning_s: float | None = None,
                 pending_s: float | None = None, deprovisioning_s: float | None = None, default_run_s: float = 0.2,
                 default_exit_code: int = 0, stop_timeout_s: float | None = None,
                 auto_create_log_groups: bool = True, workdir: str | None = None, validate_responses: bool = True,
                 tick_s: float = 0.01, realistic: bool | float | Realism | None = None):
        """``realistic``: ``True``/``Realism(...)`` for the account's real rates, launch limits, network checks
        and Fargate phase times scaled by the time factor (``realistic.py``; None: the ``EMULATOR_REALISTIC``
        environment variable decides). Phase times given explicitly win over realistic ones."""
        realism = resolve_realism(realistic)
        super().__init__(EcsFaultDice(faults if faults is not None else Faults()), tick_s=tick_s,
                         realism=realism, profile=ECS_PROFILE)
        phases = ECS_PROFILE.phases(realism) if realism else {}

        def phase(given: float | None, name: str, default: float) -> float:
            return given if given is not None else phases.get(name, default)

        timings = Timings(phase(provisioning_s, "provisioning", 0.05), phase(pending_s, "pending", 0.05),
                          phase(deprovisioning_s, "deprovisioning", 0.05), phase(stop_timeout_s, "stop_timeout", 2.0))
        self.region, self.account_id, self.execute = region, account_id, execute
        self.ec2 = Ec2(region, account_id)
        """EC2 networking on the same endpoint: ``emu.ec2.add_vpc(...)``, ``add_subnet(...)``."""
        self.backend = Backend(
            region, account_id, dice=self.dice, timings=timings,
            defaults=RunDefaults(default_run_s, default_exit_code), execute=execute,
            workdir=workdir or os.getcwd(), auto_create_log_groups=auto_create_log_groups, ec2=self.ec2,
        )
        self.protocol = AwsEndpoint(
            JsonProtocol(self.backend, self.dice, self.call_log, self.errors, validate_responses),
            QueryProtocol(self.ec2, region, self.dice, self.call_log, self.errors, validate_responses),
        )

    def tick(self) -> None:
        self.backend.tick()

    def shutdown(self) -> None:
        self.backend.shutdown()  # stops executed task processes

    # -- ECS introspection --------------------------------------------------------------

    @property
    def tasks(self) -> dict[str, Task]:
        """Snapshot ``{task ARN: Task}`` of every task ever started."""
        with self.backend.lock:
            return dict(self.backend.tasks)

    def wait_for_task(self, task_arn: str, status: str = "STOPPED", timeout: float = 10.0) -> Task:
        """Block until the task's lastStatus is ``status`` (or later, for STOPPED)."""
        def probe() -> Task | None:
            self.backend.tick()
            task = self.backend.tasks[task_arn]
            return task if task.last_status == status else None

        task = poll_until(probe, timeout)
        if task is None:
            raise TimeoutError(f"{task_arn} is {self.backend.tasks[task_arn].last_status}, not {status}")
        return task

    def create_log_group(self, name: str) -> None:
        self.backend.logs.create_group(name)

    def log_messages(self, group: str, stream: str) -> list[str]:
        return self.backend.logs.messages(group, stream)
