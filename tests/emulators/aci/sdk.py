"""The real azure-mgmt clients pointed at the emulator over plain http, the supported way (no patching).

azure-core refuses to send a bearer token over http unless the request's
context says ``enforce_https=False``; the client constructor's
``enforce_https`` is ignored. A custom ``authentication_policy`` that sets it
on every request (LRO polls included) is the clean way, with any async token
credential: the emulator accepts any Bearer value.
"""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, AsyncARMChallengeAuthenticationPolicy

ARM_SCOPE = "https://management.azure.com/.default"


class StaticTokenCredential:
    """A sync and async ``TokenCredential``: one fixed token, valid for an hour."""

    def __init__(self, token: str = "emulator-token"):
        self.token, self.requests = token, 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.requests += 1
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessToken:
        return self.get_token(*scopes)

    def close(self) -> None:
        pass

    def __enter__(self) -> StaticTokenCredential:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        pass


class AsyncStaticTokenCredential(StaticTokenCredential):
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        return super().get_token(*scopes, **kwargs)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessToken:  # type: ignore[override]
        return super().get_token(*scopes)

    async def close(self) -> None:  # type: ignore[override]
        pass

    async def __aenter__(self) -> AsyncStaticTokenCredential:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        pass


class InsecureAsyncARMAuth(AsyncARMChallengeAuthenticationPolicy):
    """The SDK's own ARM auth policy, allowed to send the token to an http endpoint."""

    async def on_request(self, request):  # type: ignore[override]
        request.context["enforce_https"] = False
        await super().on_request(request)


class InsecureARMAuth(ARMChallengeAuthenticationPolicy):
    """The sync twin, for the sync clients (Prefect's worker uses those)."""

    def on_request(self, request):  # type: ignore[override]
        request.context["enforce_https"] = False
        super().on_request(request)


def client_kwargs(endpoint_url: str, credential: Any, *, is_async: bool = True, **overrides: Any) -> dict[str, Any]:
    """Constructor arguments for any azure-mgmt client against the emulator.

    Defaults for tests: ``polling_interval=0`` (the emulator's LROs take tens of
    milliseconds; a ``Retry-After`` still wins) and ``retry_total=0`` (no
    hidden retries: a test that wants azure-core's retry policy passes
    ``retry_total=N``).
    """
    policy = (InsecureAsyncARMAuth if is_async else InsecureARMAuth)(credential, ARM_SCOPE)
    return {"base_url": endpoint_url, "authentication_policy": policy, "polling_interval": 0, "retry_total": 0,
            **overrides}


def aio_aci_client(endpoint_url: str, subscription_id: str, **overrides: Any):
    """``azure.mgmt.containerinstance.aio.ContainerInstanceManagementClient`` talking to the emulator."""
    from azure.mgmt.containerinstance.aio import ContainerInstanceManagementClient

    credential = AsyncStaticTokenCredential()
    return ContainerInstanceManagementClient(credential, subscription_id,
                                             **client_kwargs(endpoint_url, credential, **overrides))
