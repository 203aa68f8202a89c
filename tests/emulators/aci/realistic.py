"""ACI realistic mode, as data: ARM's request buckets, ACI's create/delete quotas and region quotas, phase times.

Switched on by ``AciEmulator(realistic=True)`` (see ``kit/realism.py``). The rates are the documented
defaults, already modelled by ACI's own knobs (``faults.py``): realistic mode only switches them on. They are
real-time limits and are not scaled by the time factor.
"""

from __future__ import annotations

from ..kit import Profile
from .faults import ACI_CREATE_QUOTA, ACI_DELETE_QUOTA, ARM_SUBSCRIPTION_LIMITS

# ARM throttling, "Understand how Azure Resource Manager throttles requests"
# (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling): regional
# token buckets per subscription and principal: reads 250 / 25 per s, writes 200 / 10 per s, deletes
# 200 / 10 per s. Over it: 429 SubscriptionRequestsThrottled with Retry-After. Confirmed (documented).
# ACI quotas, "Resource availability & quota limits for ACI" (MicrosoftDocs/azure-compute-docs
# container-instances-resource-and-quota-limits.md): container group creates 100 per 5 minutes and 300 per
# hour, deletes the same (429 ResourceRequestsThrottled); 100 standard container groups and 100 standard cores
# per region and subscription (400 ContainerGroupQuotaReached). Confirmed (documented; all adjustable).
MAX_GROUPS_PER_REGION = 100
MAX_CORES_PER_REGION = 100.0

# Phase times (real seconds; scaled by Realism.time_factor). A small Linux group takes ~30-60 s from PUT to
# Running: Pending (node assignment) ~15 s, then the image pull ~20 s for a small image. Deleting is
# asynchronous (202) for ~10 s. Typical observations, not documented guarantees; the SIGTERM grace is a guess.
PHASE_S = {"pending": 15.0, "pull": 20.0, "restart_backoff": 10.0, "stop_grace": 10.0, "delete": 10.0}

ACI_PROFILE = Profile(
    api_rates={},
    phase_s=PHASE_S,
    launch_knobs={"create_quota": ACI_CREATE_QUOTA, "delete_quota": ACI_DELETE_QUOTA,
                  "max_groups_per_region": MAX_GROUPS_PER_REGION, "max_cores_per_region": MAX_CORES_PER_REGION},
    api_knobs={"arm_limits": ARM_SUBSCRIPTION_LIMITS},
    network_knobs={"validate_network": True},
)
