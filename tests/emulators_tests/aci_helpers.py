"""Helpers shared by the ACI emulator tests: container group bodies from the SDK's models, raw ARM calls."""

from __future__ import annotations

import http.client
import json
from typing import Any

from azure.mgmt.containerinstance import models as m

from tests.emulators.aci import AciEmulator

RG = "rg"
API = "api-version=2023-05-01"


def container(name: str = "job", command: list[str] | None = None, env: dict[str, str] | None = None,
              cpu: float = 1.0, memory: float = 1.5, secure: dict[str, str] | None = None, **extra: Any) -> m.Container:
    variables = [m.EnvironmentVariable(name=k, value=v) for k, v in (env or {}).items()]
    variables += [m.EnvironmentVariable(name=k, secure_value=v) for k, v in (secure or {}).items()]
    return m.Container(name=name, image="prefecthq/prefect:3-latest", command=command,
                       environment_variables=variables or None,
                       resources=m.ResourceRequirements(requests=m.ResourceRequests(cpu=cpu, memory_in_gb=memory)),
                       **extra)


def group(*containers: m.Container, restart_policy: str = "Never", location: str = "eastus", **extra: Any
          ) -> m.ContainerGroup:
    return m.ContainerGroup(location=location, os_type="Linux", restart_policy=restart_policy,
                            containers=list(containers) or [container()], **extra)


def python_group(code: str, **kw: Any) -> m.ContainerGroup:
    return group(container(command=["python", "-c", code], **kw.pop("container", {})), **kw)


def body(**change: Any) -> dict[str, Any]:
    """The wire body of a default group, for raw calls that break it on purpose."""
    out = group().serialize()
    out.update(change)
    return out


def arm(emu: AciEmulator, method: str, path: str, payload: Any = None, *, query: str = API,
        token: str | None = "t", raw: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
    """One raw ARM request: status, JSON body (or None), headers (lower-cased names)."""
    host, port = emu.endpoint_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    try:
        connection.request(method, f"{path}?{query}" if query else path, body=data, headers=headers)
        response = connection.getresponse()
        content = response.read()
        return (response.status, json.loads(content) if content else None,
                {k.lower(): v for k, v in response.getheaders()})
    finally:
        connection.close()


def group_path(emu: AciEmulator, name: str = "g1", rg: str = RG) -> str:
    return (f"/subscriptions/{emu.subscription_id}/resourceGroups/{rg}/providers/"
            f"Microsoft.ContainerInstance/containerGroups/{name}")


def error_code(exc: Exception) -> str:
    return exc.error.code  # azure-core's HttpResponseError parses the ARM error body
