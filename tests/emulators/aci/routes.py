"""ARM paths -> operations: the swagger operationId (the call counter's name), the RBAC actions it needs,
whether it changes state, and which api-versions its resource provider serves.

ARM matches paths case-insensitively (the SDK for Microsoft.Resources sends
``/resourcegroups/``, the ACI SDK ``/resourceGroups/``), and so does this
table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..kit import RouteMatch, match_route

ACI_API_VERSIONS = ("2021-09-01", "2021-10-01", "2022-09-01", "2023-05-01")
"""GA api-versions of Microsoft.ContainerInstance served (2023-05-01 is the SDK's; Prefect's template uses 2022-09-01)."""
RESOURCES_API_VERSIONS = ("2021-04-01", "2022-09-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01",
                          "2025-03-01", "2025-04-01")
"""Microsoft.Resources api-versions served (azure-mgmt-resource 24 sends 2025-04-01)."""

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourceGroups/(?P<rg>[^/]+)"
_ACI = _RG + r"/providers/Microsoft\.ContainerInstance/containerGroups"
_GROUP = _ACI + r"/(?P<name>[^/]+)"
_LOCATION = _SUB + r"/providers/Microsoft\.ContainerInstance/locations/(?P<loc>[^/]+)"
_DEPLOYMENT = _RG + r"/providers/Microsoft\.Resources/deployments/(?P<deployment>[^/]+)"
CG = "Microsoft.ContainerInstance/containerGroups"


@dataclass(frozen=True)
class Route:
    op: str
    method: str
    pattern: re.Pattern[str]
    permissions: tuple[str, ...]
    provider: str  # "aci" or "resources": which api-versions apply

    @property
    def mutating(self) -> bool:
        return self.method != "GET"

    @property
    def limit_kind(self) -> str:
        """Which ARM subscription bucket the call draws on."""
        return {"GET": "reads", "DELETE": "deletes"}.get(self.method, "writes")


def _route(op: str, method: str, path: str, *permissions: str, provider: str = "aci") -> Route:
    return Route(op, method, re.compile(f"^{path}$", re.IGNORECASE), permissions, provider)


ROUTES = (
    _route("ContainerGroups_List", "GET", _SUB + r"/providers/Microsoft\.ContainerInstance/containerGroups",
           f"{CG}/read"),
    _route("ContainerGroups_ListByResourceGroup", "GET", _ACI, f"{CG}/read"),
    _route("ContainerGroups_Get", "GET", _GROUP, f"{CG}/read"),
    _route("ContainerGroups_CreateOrUpdate", "PUT", _GROUP, f"{CG}/write"),
    _route("ContainerGroups_Update", "PATCH", _GROUP, f"{CG}/write"),
    _route("ContainerGroups_Delete", "DELETE", _GROUP, f"{CG}/delete"),
    _route("ContainerGroups_Stop", "POST", _GROUP + "/stop", f"{CG}/stop/action"),
    _route("ContainerGroups_Start", "POST", _GROUP + "/start", f"{CG}/start/action"),
    _route("ContainerGroups_Restart", "POST", _GROUP + "/restart", f"{CG}/restart/action"),
    _route("Containers_ListLogs", "GET", _GROUP + r"/containers/(?P<container>[^/]+)/logs",
           f"{CG}/containers/logs/read"),
    _route("Location_ListUsage", "GET", _LOCATION + "/usages",
           "Microsoft.ContainerInstance/locations/usages/read"),
    _route("AsyncOperation_Get", "GET", _LOCATION + r"/operations/(?P<op>[^/]+)",
           "Microsoft.ContainerInstance/locations/operations/read"),
    _route("OperationResult_Get", "GET", _LOCATION + r"/operationResults/(?P<op>[^/]+)",
           "Microsoft.ContainerInstance/locations/operationresults/read"),
    _route("ResourceGroups_Get", "GET", _RG, "Microsoft.Resources/subscriptions/resourceGroups/read",
           provider="resources"),
    _route("Deployments_CreateOrUpdate", "PUT", _DEPLOYMENT, "Microsoft.Resources/deployments/write",
           provider="resources"),
    _route("Deployments_Get", "GET", _DEPLOYMENT, "Microsoft.Resources/deployments/read", provider="resources"),
    _route("DeploymentOperationStatus_Get", "GET", _DEPLOYMENT + r"/operationStatuses/(?P<op>[^/]+)",
           "Microsoft.Resources/deployments/operationstatuses/read", provider="resources"),
)


def match(method: str, path: str) -> RouteMatch[Route]:
    """The route, its path parameters, and whether the path exists under another method (405, not 404)."""
    return match_route(ROUTES, method, path)

def linked_access_permissions(body: Any) -> tuple[str, ...]:
    """ARM's linked access checks on a container group PUT/PATCH: attaching a user-assigned identity
    needs ``assign/action`` on it, joining a subnet ``join/action`` on that subnet."""
    if not isinstance(body, dict):
        return ()
    linked = []
    identity = body.get("identity")
    if isinstance(identity, dict) and identity.get("userAssignedIdentities"):
        linked.append("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action")
    props = body.get("properties")
    if isinstance(props, dict) and props.get("subnetIds"):
        linked.append("Microsoft.Network/virtualNetworks/subnets/join/action")
    return tuple(linked)

