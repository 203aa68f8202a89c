"""azure-mgmt-containerinstance aio clients: one per (credential set, subscription), created lazily, reused.

A credential set is the pool's ``aci_credentials`` block, else the operator's
``providers.aci.credentials``, else DefaultAzureCredential (managed identity); it is
identified by a hash that never shows the secret. azure-core's own retries are off
(``retry_total=0``): a retried PUT redeploys (restarts) an existing group, and the
dispatcher retries transient errors under its deadlines anyway.

An emulator is reached over plain http the supported way: the SDK's ARM
authentication policy, told per request that http is allowed (``enforce_https`` in
the request context; the client constructor's own option is ignored by azure-core).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any, Optional

from azure.core.credentials import AccessToken
from azure.mgmt.containerinstance.aio import ContainerInstanceManagementClient
from azure.mgmt.core.policies import AsyncARMChallengeAuthenticationPolicy

from providers.aci.config import AciSettings
from providers.aci.credentials import AzureContainerInstanceCredentials
from providers.aci.errors import azure_errors

logger = logging.getLogger(__name__)

#: SDK loggers that print request headers and bodies (the run's environment) at DEBUG/INFO.
_BODY_LOGGERS = ("azure", "azure.core.pipeline.policies.http_logging_policy", "azure.identity")


def quiet_sdk_body_logs() -> None:
    """Keep azure-core's request logging (bodies, env values) from ever being emitted below WARNING."""
    for name in _BODY_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if sdk_logger.level < logging.WARNING:
            sdk_logger.setLevel(logging.WARNING)


class _StaticToken:
    """An async token credential with one fixed token (``static_bearer_token``: emulators only)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None


class _HttpAllowedARMAuth(AsyncARMChallengeAuthenticationPolicy):
    """The SDK's ARM auth policy, allowed to send the token over http (settings.allow_http)."""

    async def on_request(self, request: Any) -> None:  # type: ignore[override]
        request.context["enforce_https"] = False
        await super().on_request(request)


def effective_credentials(block: AzureContainerInstanceCredentials,
                          settings: AciSettings) -> AzureContainerInstanceCredentials:
    """The pool's block when it names a principal, else the operator's, else the empty one (DefaultAzureCredential)."""
    if block.client_id or block.tenant_id or block.client_secret:
        return block
    return settings.credentials or block


def fingerprint(creds: AzureContainerInstanceCredentials, subscription_id: str) -> str:
    secret = creds.client_secret.get_secret_value() if creds.client_secret else ""
    material = json.dumps([creds.client_id, creds.tenant_id, secret, creds.credential_kwargs, subscription_id],
                          sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


class AzureClients:
    """Clients per (credential set, subscription); safe to use concurrently from one event loop."""

    def __init__(self, settings: AciSettings) -> None:
        quiet_sdk_body_logs()
        self.settings = settings
        self._clients: dict[str, tuple[ContainerInstanceManagementClient, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.created = 0

    def key(self, block: AzureContainerInstanceCredentials, subscription_id: str) -> str:
        return fingerprint(effective_credentials(block, self.settings), subscription_id)

    async def client(self, block: AzureContainerInstanceCredentials,
                     subscription_id: str) -> ContainerInstanceManagementClient:
        creds = effective_credentials(block, self.settings)
        key = fingerprint(creds, subscription_id)
        found = self._clients.get(key)
        if found is not None:
            return found[0]
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key not in self._clients:
                self._clients[key] = self._create(creds, subscription_id)
                self.created += 1
                logger.info("created Azure ACI client for credential set %s", key)
        return self._clients[key][0]

    def _credential(self, creds: AzureContainerInstanceCredentials) -> Any:
        if self.settings.static_bearer_token is not None:
            return _StaticToken(self.settings.static_bearer_token.get_secret_value())
        with azure_errors("credential"):
            from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential

            if creds.client_secret is not None and creds.client_id and creds.tenant_id:
                return ClientSecretCredential(creds.tenant_id, creds.client_id, creds.client_secret.get_secret_value(),
                                              **creds.credential_kwargs)
            return DefaultAzureCredential(**creds.credential_kwargs)

    def _create(self, creds: AzureContainerInstanceCredentials,
                subscription_id: str) -> tuple[ContainerInstanceManagementClient, Any]:
        credential = self._credential(creds)
        endpoint = self.settings.arm_endpoint.rstrip("/")
        kwargs: dict[str, Any] = {"base_url": endpoint, "retry_total": 0, "polling_interval": 5}
        if self.settings.allow_http:
            kwargs["authentication_policy"] = _HttpAllowedARMAuth(credential, f"{_audience(endpoint)}/.default")
        return ContainerInstanceManagementClient(credential, subscription_id, **kwargs), credential

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client, credential in clients:
            await client.close()
            close: Optional[Any] = getattr(credential, "close", None)
            if close is not None:
                await close()
        self._locks.clear()


def _audience(endpoint: str) -> str:
    """Token audience of an ARM endpoint (management.azure.com for the public cloud and emulators)."""
    return endpoint if endpoint.startswith("https://") else "https://management.azure.com"
