"""Where a run's container group lives, and the quota pacers of each subscription."""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from providers.aci.config import AciSettings
from providers.pacing import PacerSettings, Pacers


class Scope(BaseModel):
    """One (credential set, subscription, resource group): one client, one List, one set of quotas."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Fingerprint of the credential set and subscription (never the secret).")
    subscription: str = Field(description="Subscription id.")
    resource_group: str = Field(description="Resource group name as configured.")


class Target(BaseModel):
    """One container group of ours."""

    model_config = ConfigDict(frozen=True)

    scope: Scope = Field(description="Where it lives.")
    name: str = Field(description="Container group name.")
    infrastructure_id: str = Field(description="What submit returned (flow run id : group name).")


def _quota_pacer(per_5min: int, per_hour: int) -> PacerSettings:
    """ACI's "N per 5 minutes and M per hour": a burst of N, then the hourly rate (what is left of it after the
    burst, so the first hour stays within M); AIMD on 429s takes care of the rest."""
    steady = max(per_hour - per_5min, per_hour / 12) / 3600
    return PacerSettings(initial_rate=steady, min_rate=steady / 10, max_rate=per_hour / 3600,
                         burst=float(per_5min), increase_per_s=steady / 600)


class QuotaPacers:
    """Creates, deletes and reads, each paced per subscription."""

    def __init__(self, settings: AciSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.creates = Pacers(_quota_pacer(settings.create_quota_per_5min, settings.create_quota_per_hour), clock)
        self.deletes = Pacers(_quota_pacer(settings.delete_quota_per_5min, settings.delete_quota_per_hour), clock)
        self.reads = Pacers(PacerSettings(initial_rate=settings.reads_per_s, min_rate=settings.reads_per_s / 10,
                                          max_rate=settings.reads_per_s, burst=settings.read_burst,
                                          increase_per_s=settings.reads_per_s / 60), clock)
