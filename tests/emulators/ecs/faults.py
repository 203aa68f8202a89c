"""ECS's own fault knobs on top of the kit's shared ones, and the dice rules that use them.

The shared knobs (throttling, 5xx, latency, rate limits, lost responses,
accept-then-fail, ``ops``, ``seed``) live in ``tests.emulators.kit.faults``;
here the ECS JSON protocol answers them as 400 ``ThrottlingException`` "Rate
exceeded" and 500 ``ServerException``, the EC2 query protocol as 503
``RequestLimitExceeded`` and 500 ``InternalError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..kit import faults as kit


@dataclass(kw_only=True)
class Faults(kit.Faults):
    capacity_failures: int = 0
    """The next N RunTask calls place no task: HTTP 200 with ``failures``."""
    capacity_failure_rate: float = 0.0
    """Fraction of RunTask calls that fail placement that way."""
    capacity_failure_reason: str = "RESOURCE:MEMORY"
    start_failures: int = 0
    """The next N launched tasks stop in PENDING with stopCode TaskFailedToStart."""
    start_failure_reason: str = (
        "CannotPullContainerError: pull image manifest has been retried 1 time(s): "
        "failed to resolve ref docker.io/library/emulated:latest: not found"
    )
    spot_interruptions: int = 0
    """The next N tasks to reach RUNNING are stopped with stopCode SpotInterruption."""
    spot_after_s: float = 0.05
    """How long an interrupted task runs before the interruption."""
    spot_only: bool = False
    """If True, only FARGATE_SPOT tasks are interrupted (what real ECS does)."""
    launch_limits: dict[str, kit.RateLimit] = field(default_factory=dict)
    """Task launch-rate buckets by capacity provider (``FARGATE``, ``FARGATE_SPOT``; a plain launchType FARGATE
    counts as ``FARGATE``), one token per task; a RunTask over it is 400 ``ThrottlingException`` and launches
    nothing. Realistic mode: 100 burst, 20 per second each (``realistic.FARGATE_LAUNCH``)."""
    validate_network: bool = False
    """If True, RunTask's subnets and security groups must exist in the emulated EC2 (``emu.ec2``), as on AWS;
    else any ``subnet-*``/``sg-*`` name is accepted."""


class EcsFaultDice(kit.FaultDice):
    """The kit's dice plus the placement, start and Spot rules of ECS."""

    faults: Faults

    def capacity_failure(self) -> bool:
        return self.take("capacity_failures") or self.roll(self.faults.capacity_failure_rate)

    def launch_admits(self, tasks_per_provider: dict[str, int]) -> bool:
        """Take one launch token per task from each provider's bucket; False (nothing taken) if one lacks them."""
        limits = self.faults.launch_limits
        wanted = {provider: n for provider, n in tasks_per_provider.items() if provider in limits}
        if any(self.tokens(f"launch:{p}", limits[p]) < n for p, n in wanted.items()):
            return False
        return all(self.admit(f"launch:{p}", limits[p], cost=n) for p, n in wanted.items())

    def spot_interruption(self, capacity_provider: str | None) -> bool:
        if self.faults.spot_only and capacity_provider != "FARGATE_SPOT":
            return False
        return self.take("spot_interruptions")
