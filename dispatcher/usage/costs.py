"""Cost estimates and links to Prefect's UI (pure).

A cost is vCPU time and memory time at the provider's price: compute seconds x vCPUs x price
per vCPU-hour / 3600, plus the same for GiB of memory. Clouds bill per second with a short
minimum, so exact compute seconds are priced, not the rounded-up minutes budgets count.
"""

from __future__ import annotations

import re

from dispatcher.config import WorkspaceConfig
from dispatcher.config.usage import PriceTable

_CLOUD_API = re.compile(r"^(?P<scheme>https?://)api\.(?P<host>[^/]+)/api/accounts/(?P<account>[^/]+)/workspaces/(?P<workspace>[^/]+)$")


def cost(prices: PriceTable, provider: str, vcpu_seconds: float, memory_gib_seconds: float) -> float | None:
    """The estimate, or None when the provider has no price."""
    price = prices.price_of(provider)
    if price is None:
        return None
    return (vcpu_seconds * price.vcpu_hour + memory_gib_seconds * price.memory_gib_hour) / 3600


def ui_base_url(workspace: WorkspaceConfig) -> str:
    """The workspace's Prefect UI: ``ui_url`` if set, else derived from ``api_url`` as Prefect derives it
    (Cloud: api.<host>/api/accounts/A/workspaces/W -> app.<host>/account/A/workspace/W; a server: without /api)."""
    if workspace.ui_url:
        return workspace.ui_url.rstrip("/")
    api = workspace.api_url.rstrip("/")
    cloud = _CLOUD_API.match(api)
    if cloud:
        return f"{cloud['scheme']}app.{cloud['host']}/account/{cloud['account']}/workspace/{cloud['workspace']}"
    return api.removesuffix("/api")


def flow_run_url(base_url: str, flow_run_id: str) -> str:
    return f"{base_url}/runs/flow-run/{flow_run_id}"
