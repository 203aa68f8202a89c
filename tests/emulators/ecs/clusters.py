"""ECS clusters: name/ARN resolution, CreateCluster, DescribeClusters."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import cluster_not_found, invalid_parameter
from .util import check_tags, without_none

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")


@dataclass
class Cluster:
    name: str
    arn: str
    tags: list[dict] = field(default_factory=list)
    capacity_providers: list[str] = field(default_factory=list)
    default_strategy: list[dict] = field(default_factory=list)
    settings: list[dict] = field(default_factory=lambda: [{"name": "containerInsights", "value": "disabled"}])

    def to_api(self, counts: dict[str, int], include: list[str]) -> dict[str, Any]:
        return without_none(
            {
                "clusterArn": self.arn,
                "clusterName": self.name,
                "status": "ACTIVE",
                "registeredContainerInstancesCount": 0,
                "runningTasksCount": counts.get("running", 0),
                "pendingTasksCount": counts.get("pending", 0),
                "activeServicesCount": 0,
                "statistics": [],
                "tags": list(self.tags) if "TAGS" in include else None,
                "settings": list(self.settings) if "SETTINGS" in include else None,
                "capacityProviders": list(self.capacity_providers),
                "defaultCapacityProviderStrategy": list(self.default_strategy),
            }
        )


class ClusterStore:
    """All clusters of the emulated account.

    The ``default`` cluster exists from the start and, like a cluster made in
    the console, has the FARGATE and FARGATE_SPOT capacity providers.
    """

    def __init__(self, region: str, account: str):
        self._prefix = f"arn:aws:ecs:{region}:{account}:cluster/"
        self._clusters: dict[str, Cluster] = {}
        self._add("default", list(FARGATE_PROVIDERS))

    def _add(self, name: str, providers: list[str], strategy=None, tags=None, settings=None) -> Cluster:
        cluster = Cluster(name, self._prefix + name, list(tags or []), providers, list(strategy or []))
        if settings:
            cluster.settings = list(settings)
        self._clusters[name] = cluster
        return cluster

    def name_of(self, ref: str | None) -> str:
        ref = ref or "default"
        if ref.startswith("arn:"):
            return ref[len(self._prefix) :] if ref.startswith(self._prefix) else ""
        return ref

    def find(self, ref: str | None) -> Cluster | None:
        return self._clusters.get(self.name_of(ref))

    def get(self, ref: str | None) -> Cluster:
        cluster = self.find(ref)
        if cluster is None:
            raise cluster_not_found()
        return cluster

    def all(self) -> list[Cluster]:
        return list(self._clusters.values())

    def create(self, params: dict[str, Any]) -> Cluster:
        name = params.get("clusterName") or "default"
        if not _NAME.match(name):
            raise invalid_parameter(
                "Cluster name can only contain up to 255 letters (uppercase and lowercase), "
                "numbers, underscores, and hyphens."
            )
        if name in self._clusters:  # CreateCluster is idempotent on the name
            return self._clusters[name]
        check_tags(params.get("tags"))
        providers = params.get("capacityProviders") or []
        for provider in providers:
            if provider not in FARGATE_PROVIDERS:
                raise invalid_parameter(f"The specified capacity provider '{provider}' does not exist.")
        strategy = params.get("defaultCapacityProviderStrategy") or []
        for item in strategy:
            if item["capacityProvider"] not in providers:
                raise invalid_parameter(
                    "The specified capacity provider strategy cannot contain a capacity provider "
                    "that is not associated with the cluster."
                )
        return self._add(name, list(providers), strategy, params.get("tags"), params.get("settings"))

    def describe(self, params: dict[str, Any], counts: Callable[[Cluster], dict[str, int]]) -> dict:
        include = params.get("include") or []
        found, failures = [], []
        for ref in params.get("clusters") or ["default"]:
            cluster = self.find(ref)
            if cluster is None:
                arn = ref if ref.startswith("arn:") else self._prefix + ref
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(cluster.to_api(counts(cluster), include))
        return {"clusters": found, "failures": failures}
