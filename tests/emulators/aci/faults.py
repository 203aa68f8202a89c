"""ACI's own fault knobs and quotas on top of the kit's shared ones.

The shared knobs (throttling, 5xx, latency, rate limits, lost responses,
accept-then-fail, ``ops``, ``seed``) are answered the ARM way: 429
``SubscriptionRequestsThrottled`` with ``Retry-After``, 503
``ServiceUnavailable``, 500 ``InternalServerError`` for a lost response, 503
for accept-then-fail (the PUT was carried out: the group exists). Every knob
is off by default; the constants below are the documented defaults to switch
on (``Faults(create_quota=ACI_CREATE_QUOTA, max_groups_per_region=100)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..kit import faults as kit

FIVE_MINUTES, ONE_HOUR = 300.0, 3600.0

ACI_CREATE_QUOTA = {"00:05:00": kit.RateLimit(per_s=100 / FIVE_MINUTES, burst=100),
                    "01:00:00": kit.RateLimit(per_s=300 / ONE_HOUR, burst=300)}
"""ACI's documented create rate per subscription: 100 per 5 minutes and 300 per hour (adjustable)."""
ACI_DELETE_QUOTA = dict(ACI_CREATE_QUOTA)
"""Deletes have the same documented quota as creates."""
ARM_SUBSCRIPTION_LIMITS = {"reads": kit.RateLimit(per_s=25, burst=250), "writes": kit.RateLimit(per_s=10, burst=200),
                           "deletes": kit.RateLimit(per_s=10, burst=200)}
"""ARM's per-subscription, per-principal token buckets (regional throttling since 2024)."""


@dataclass(kw_only=True)
class Faults(kit.Faults):
    throttle_retry_after_s: float = 1.0
    """The ``Retry-After`` of an injected throttle (``throttle_rate``/``rate_limit`` answer with the bucket's own wait)."""
    arm_limits: dict[str, kit.RateLimit] | None = None
    """ARM's subscription buckets, keyed ``reads``/``writes``/``deletes`` (``ARM_SUBSCRIPTION_LIMITS``): enforced with
    429s and reported in ``x-ms-ratelimit-remaining-subscription-*``. None: not enforced, headers show full buckets."""
    create_quota: dict[str, kit.RateLimit] = field(default_factory=dict)
    """Container group creates per subscription, by window name (``ACI_CREATE_QUOTA``); a PUT of a new group
    finding any window empty is refused whole with 429 ``ResourceRequestsThrottled``."""
    delete_quota: dict[str, kit.RateLimit] = field(default_factory=dict)
    """The same for DELETEs of existing groups (``ACI_DELETE_QUOTA``)."""
    max_groups_per_region: int | None = None
    """Standard container groups per region and subscription (documented default 100): 400
    ``ContainerGroupQuotaReached`` (quota 'ContainerGroups') past it."""
    max_cores_per_region: float | None = None
    """Standard cores per region and subscription (documented default 100; some subscriptions get 10): 400
    ``ContainerGroupQuotaReached`` (quota 'StandardCores')."""
    gpu_quota: dict[str, int] = field(default_factory=dict)
    """GPU cores per SKU (``{"V100": 4}``); a SKU missing here has quota 0, as on most subscriptions."""
    capacity_failures: int = 0
    """The next N creates are refused with 409 ``ServiceUnavailable`` "The requested resource is not available in
    the location ..." (regional capacity), the group not created."""
    capacity_failure_rate: float = 0.0
    """Fraction of creates refused that way."""
    inaccessible_images: set[str] = field(default_factory=set)
    """Images the registry does not have: PUT answers 400 ``InaccessibleImage`` at once."""
    pull_failures: int = 0
    """The next N created groups fail to pull their image asynchronously: Pulling/Failed/BackOff events, then
    provisioningState Failed and the create operation Failed (``InaccessibleImage``)."""
    platform_restarts: int = 0
    """The next N containers exiting non-zero under ``restartPolicy: Never`` are restarted anyway, as the ACI docs
    warn the platform may do."""
    outage_after_create: int = 0
    """The next N creates of a new group are carried out, then answered 503, and ``outage`` is switched on: the
    client never learns what happened (a re-drive after a crash must find the group by itself)."""
    validate_network: bool = False
    """If True, ``subnetIds`` must name subnets of ``emu.networks`` in the group's region, delegated to ACI."""
    outage: bool = False
    """Every call answers 503 ``ServiceUnavailable`` (not carried out) until a test switches it off."""


class AciFaultDice(kit.FaultDice):
    """The kit's dice plus ACI's capacity, pull and restart rules."""

    faults: Faults

    def capacity_failure(self) -> bool:
        return self.take("capacity_failures") or self.roll(self.faults.capacity_failure_rate)

    def pull_failure(self) -> bool:
        return self.take("pull_failures")

    def platform_restart(self) -> bool:
        return self.take("platform_restarts")

    def outage_after_create(self) -> bool:
        if self.take("outage_after_create"):
            self.faults.outage = True
            return True
        return False
