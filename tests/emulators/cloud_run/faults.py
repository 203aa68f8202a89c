"""Cloud Run's own fault knobs on top of the kit's shared ones, and the dice rules that use them.

The shared knobs (throttling, 5xx, latency, rate limits, lost responses,
accept-then-fail, ``ops``, ``seed``) live in ``tests.emulators.kit.faults``;
Cloud Run answers them as 429 ``RESOURCE_EXHAUSTED`` and 503 ``UNAVAILABLE``
(a carried-out ``:run`` answered 503 is accept-then-fail).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..kit import faults as kit


@dataclass(kw_only=True)
class Faults(kit.Faults):
    start_failures: int = 0
    """The next N executions never start: the image cannot be pulled (ContainerReady and Completed fail)."""
    start_failure_message: str = "Image '{image}' not found."
    missing_images: set[str] = field(default_factory=set)
    """Jobs created with one of these images never get Ready: CONDITION_FAILED, reason CONTAINER_MISSING."""
    run_requests_per_minute: int | None = None
    """The "Job run requests per minute per region" quota; a RunJob over it is 429 with the quota's ErrorInfo."""
    capacity_failures: int = 0
    """The next N RunJob calls are refused 429 ``RESOURCE_EXHAUSTED`` for lack of instances in the region
    (no execution created): quota is not a guarantee of resources (quotas page)."""
    capacity_failure_rate: float = 0.0
    """Fraction of RunJob calls refused that way."""
    validate_network: bool = False
    """If True, a job's ``vpcAccess`` connector, networks and subnetworks must exist in ``emu.networks``."""


class CloudRunFaultDice(kit.FaultDice):
    """The kit's dice plus Cloud Run's start failures and run-request quota."""

    faults: Faults

    def start_failure(self, image: str) -> str | None:
        if not self.take("start_failures"):
            return None
        return self.faults.start_failure_message.format(image=image)

    def capacity_failure(self) -> bool:
        return self.take("capacity_failures") or self.roll(self.faults.capacity_failure_rate)

    def run_quota_admits(self) -> bool:
        per_minute = self.faults.run_requests_per_minute
        if per_minute is None:
            return True
        return self.admit("quota:job-run-requests", kit.RateLimit(per_s=per_minute / 60, burst=per_minute))
