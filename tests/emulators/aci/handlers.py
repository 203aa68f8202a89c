"""One function per ACI operation: path parameters and body in, an ``Answer`` out (under the backend lock).

Long-running answers carry the headers the SDK poller follows:
``Azure-AsyncOperation`` (the operation status URL), plus ``Location`` for a
202 delete, and ``Retry-After`` (``Timings.lro_retry_after_s``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.mgmt.containerinstance import models

from . import errors
from .backend import Backend
from .lro import IN_PROGRESS, Operation
from .validation import parse_issues

ACI_API_VERSION = "2023-05-01"


@dataclass
class Call:
    params: dict[str, str]
    body: Any
    query: dict[str, list[str]]
    base_url: str
    """``http://host:port`` as the client addressed us: links (nextLink, async operations) are absolute."""

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Answer:
    status: int
    payload: Any = None
    output: type | None = None
    """The SDK model the payload must fit (checked by the response guard)."""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Backend, Call], Answer]


def _async_headers(backend: Backend, call: Call, op: Operation, location_header: bool = False) -> dict[str, str]:
    status_url = f"{call.base_url}{op.path}?api-version={ACI_API_VERSION}"
    headers = {"Azure-AsyncOperation": status_url, "Retry-After": str(backend.timings.lro_retry_after_s)}
    if location_header:
        headers["Location"] = status_url.replace("/operations/", "/operationResults/")
    return headers


def create_or_update(backend: Backend, call: Call) -> Answer:
    if not isinstance(call.body, dict):
        raise errors.invalid_request_content("The request body must be a JSON object")
    issues = parse_issues(models.ContainerGroup, call.body)  # ARM cannot even read it: 400 at once
    status, group, op = backend.put(call.params["rg"], call.params["name"], call.body, issues)
    return Answer(status, group.to_api(), models.ContainerGroup, _async_headers(backend, call, op))


def get(backend: Backend, call: Call) -> Answer:
    return Answer(200, backend.get(call.params["rg"], call.params["name"]).to_api(), models.ContainerGroup)


def update_tags(backend: Backend, call: Call) -> Answer:
    if not isinstance(call.body, dict) or set(call.body) - {"tags"}:
        raise errors.invalid_request_content("Only 'tags' can be updated with PATCH on a container group")
    group = backend.update_tags(call.params["rg"], call.params["name"], call.body)
    return Answer(200, group.to_api(), models.ContainerGroup)


def list_groups(backend: Backend, call: Call) -> Answer:
    """A page of groups WITHOUT instanceView, as production List answers; ``nextLink`` is absolute."""
    groups = backend.listing(call.params.get("rg"))
    start = int(call.arg("$skipToken") or 0)
    size = backend.list_page_size
    page = groups[start:start + size]
    payload: dict[str, Any] = {"value": [g.to_api(instance_view=False) for g in page]}
    if start + size < len(groups):
        path = call.params["_path"]
        payload["nextLink"] = f"{call.base_url}{path}?api-version={call.arg('api-version')}&$skipToken={start + size}"
    return Answer(200, payload, models.ContainerGroupListResult)


def delete(backend: Backend, call: Call) -> Answer:
    group, op = backend.delete(call.params["rg"], call.params["name"])
    if group is None:
        return Answer(204)
    if op is None:
        return Answer(200, group.to_api(), models.ContainerGroup)
    return Answer(202, None, None, _async_headers(backend, call, op, location_header=True))


def stop(backend: Backend, call: Call) -> Answer:
    backend.stop(call.params["rg"], call.params["name"])
    return Answer(204)


def start(backend: Backend, call: Call) -> Answer:
    op = backend.start(call.params["rg"], call.params["name"])
    return Answer(202, None, None, _async_headers(backend, call, op, location_header=True))


def restart(backend: Backend, call: Call) -> Answer:
    backend.restart(call.params["rg"], call.params["name"])
    return Answer(204)  # the SDK (10.1.0) accepts only 204 here: no operation to follow


def list_logs(backend: Backend, call: Call) -> Answer:
    tail = call.arg("tail")
    if tail is not None and not tail.lstrip("-").isdigit():
        raise errors.invalid_request_content(f"Could not convert string to integer: {tail}. Path 'tail'")
    timestamps = (call.arg("timestamps") or "false").lower() == "true"
    p = call.params
    content = backend.logs(p["rg"], p["name"], p["container"], int(tail) if tail else None, timestamps)
    return Answer(200, {"content": content}, models.Logs)


def list_usage(backend: Backend, call: Call) -> Answer:
    return Answer(200, {"value": backend.usages(call.params["loc"].lower())}, models.UsageListResult)


def operation_status(backend: Backend, call: Call) -> Answer:
    op = _operation(backend, call)
    retry = {"Retry-After": str(backend.timings.lro_retry_after_s)} if op.status == IN_PROGRESS else {}
    return Answer(200, op.to_api(), None, retry)


def operation_result(backend: Backend, call: Call) -> Answer:
    """The ``Location`` of a 202: 202 while running, then 204 (nothing to return for delete/start)."""
    op = _operation(backend, call)
    if op.status == IN_PROGRESS:
        return Answer(202, None, None, {"Location": f"{call.base_url}{call.params['_path']}?api-version="
                                                    f"{call.arg('api-version')}",
                                        "Retry-After": str(backend.timings.lro_retry_after_s)})
    if op.error is not None:
        raise errors.ArmError(400, op.error["code"], op.error["message"])
    return Answer(204)


def _operation(backend: Backend, call: Call) -> Operation:
    op = backend.operation(call.params["op"])
    if op is None or op.subscription != call.params["sub"] or op.location != call.params["loc"].lower():
        raise errors.ArmError(404, "OperationNotFound", f"The operation '{call.params['op']}' could not be found.")
    return op


def resource_group(backend: Backend, call: Call) -> Answer:
    name, location = backend.resource_group(call.params["rg"])
    payload = {"id": f"/subscriptions/{backend.subscription}/resourceGroups/{name}", "name": name,
               "type": "Microsoft.Resources/resourceGroups", "location": location,
               "properties": {"provisioningState": "Succeeded"}}
    return Answer(200, payload, None)


ACI_HANDLERS: dict[str, Handler] = {
    "ContainerGroups_List": list_groups,
    "ContainerGroups_ListByResourceGroup": list_groups,
    "ContainerGroups_Get": get,
    "ContainerGroups_CreateOrUpdate": create_or_update,
    "ContainerGroups_Update": update_tags,
    "ContainerGroups_Delete": delete,
    "ContainerGroups_Stop": stop,
    "ContainerGroups_Start": start,
    "ContainerGroups_Restart": restart,
    "Containers_ListLogs": list_logs,
    "Location_ListUsage": list_usage,
    "AsyncOperation_Get": operation_status,
    "OperationResult_Get": operation_result,
    "ResourceGroups_Get": resource_group,
}
