"""aiobotocore clients: one per (credential set, service), created lazily and reused by every run.

A credential set is identified by :meth:`AwsCredentials.fingerprint` (a hash
over every field incl. region and endpoint; the secret never appears in it).
Retries are botocore's own (``retry_mode``/``max_attempts`` from the settings;
adaptive mode also rate-limits on the client side); the dispatcher retries
transient errors once more around each provider call, so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any, Optional

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.session import AioSession

from providers.ecs.config import EcsSettings
from providers.ecs.credentials import AwsClientParameters, AwsCredentials
from providers.ecs.errors import aws_errors
from providers.errors import InvalidJobConfiguration

logger = logging.getLogger(__name__)

DEFAULT_SESSION_NAME = "prefect-push-dispatcher"
#: Config keys the operator's settings own (the dispatcher's retry design depends on them).
_OWNED_CONFIG = ("retries", "max_pool_connections")
#: SDK loggers whose DEBUG records print request and response bodies: the flow run's
#: environment (Prefect API key included) and STS credentials.
_BODY_LOGGERS = ("botocore", "aiobotocore")


def quiet_sdk_body_logs() -> None:
    """Keep the SDK's body-dumping DEBUG records from ever being created (secrets never reach logs).

    The level is set on the SDK's own loggers, so a root logger turned to DEBUG later does not
    re-enable them; an operator who really wants them sets these loggers explicitly afterwards.
    """
    for name in _BODY_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if sdk_logger.level < logging.INFO:  # NOTSET (0) included
            sdk_logger.setLevel(logging.INFO)


def effective_credentials(creds: AwsCredentials, settings: EcsSettings) -> AwsCredentials:
    """The pool's credentials, or the operator's when the pool chose none; region and endpoint filled in."""
    chosen = creds if not creds.is_empty() else (settings.credentials or creds)
    params = creds.aws_client_parameters
    if params == AwsClientParameters():
        params = chosen.aws_client_parameters
    region = creds.region_name or chosen.region_name or settings.region_name
    return chosen.model_copy(update={"region_name": region, "aws_client_parameters": params})


class AwsClients:
    """SDK clients per credential set; safe to use concurrently from one event loop."""

    def __init__(self, settings: EcsSettings) -> None:
        quiet_sdk_body_logs()
        self.settings = settings
        self._stack = AsyncExitStack()
        self._clients: dict[tuple[str, str], Any] = {}
        self._sessions: dict[str, AioSession] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.created = 0  # clients created so far (tests and metrics)

    def resolve(self, creds: AwsCredentials) -> tuple[str, AwsCredentials]:
        """(cache key, effective credentials) of a job configuration's credentials."""
        effective = effective_credentials(creds, self.settings)
        return effective.fingerprint(), effective

    async def client(self, service: str, creds: AwsCredentials) -> Any:
        """The shared ``service`` client for ``creds`` (effective credentials, see :meth:`resolve`)."""
        key = (creds.fingerprint(), service)
        client = self._clients.get(key)
        if client is not None:
            return client
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._clients:
                self._clients[key] = await self._create(service, creds, key[0])
                self.created += 1
                logger.info("created AWS %s client for credential set %s (region %s)",
                            service, key[0], self._clients[key].meta.region_name)
        return self._clients[key]

    async def _create(self, service: str, creds: AwsCredentials, fingerprint: str) -> Any:
        session = await self._session(creds, fingerprint)
        params = creds.aws_client_parameters
        kwargs: dict[str, Any] = {
            "region_name": creds.region_name,
            "endpoint_url": params.endpoint_url,
            "use_ssl": params.use_ssl,
            "verify": params.verify_value(),
            "config": self.config(params),
        }
        if service == "ecs" and params.api_version:
            kwargs["api_version"] = params.api_version
        if not creds.assume_role_arn:
            kwargs.update(_static_keys(creds))
        with aws_errors(f"create {service} client"):
            return await self._stack.enter_async_context(session.create_client(service, **kwargs))

    def config(self, params: AwsClientParameters) -> AioConfig:
        """The pool's botocore options, with the operator's retries and connection pool."""
        user = {k: v for k, v in (params.config or {}).items() if k not in _OWNED_CONFIG}
        # total_max_attempts counts the first attempt, as AWS_MAX_ATTEMPTS does (botocore's
        # "max_attempts" key would count retries only).
        retries = {"mode": self.settings.retry_mode, "total_max_attempts": self.settings.max_attempts}
        owned = {"retries": retries,
                 "max_pool_connections": self.settings.max_pool_connections}
        try:
            return AioConfig(**user, **owned)
        except TypeError as exc:
            raise InvalidJobConfiguration(
                "aws_credentials.aws_client_parameters.config", sorted(user), f"botocore Config options ({exc})"
            ) from None

    async def _session(self, creds: AwsCredentials, fingerprint: str) -> AioSession:
        session = self._sessions.get(fingerprint)
        if session is None:
            session = AioSession(profile=creds.profile_name) if creds.profile_name else AioSession()
            if creds.assume_role_arn:
                await self._assume_role(session, creds)
            self._sessions[fingerprint] = session
        return session

    async def _assume_role(self, session: AioSession, creds: AwsCredentials) -> None:
        """Give ``session`` refreshable credentials of the role (refreshed by botocore before expiry)."""
        base = AioSession(profile=creds.profile_name) if creds.profile_name else AioSession()
        role_kwargs = creds.assume_role_kwargs.model_dump(exclude_none=True)
        role_kwargs.setdefault("RoleSessionName", DEFAULT_SESSION_NAME)
        params = creds.aws_client_parameters

        async def fetch() -> dict[str, str]:
            with aws_errors("sts AssumeRole"):
                async with base.create_client(
                    "sts", region_name=creds.region_name, endpoint_url=params.endpoint_url, use_ssl=params.use_ssl,
                    verify=params.verify_value(), config=self.config(params), **_static_keys(creds),
                ) as sts:
                    answer = await sts.assume_role(RoleArn=creds.assume_role_arn, **role_kwargs)
            issued = answer["Credentials"]
            return {"access_key": issued["AccessKeyId"], "secret_key": issued["SecretAccessKey"],
                    "token": issued["SessionToken"], "expiry_time": issued["Expiration"].isoformat()}

        metadata = await fetch()
        session._credentials = AioRefreshableCredentials.create_from_metadata(  # noqa: SLF001 - aiobotocore's hook
            metadata=metadata, refresh_using=fetch, method="sts-assume-role"
        )

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._stack = AsyncExitStack()
        self._clients.clear()
        self._sessions.clear()
        self._locks.clear()


def _static_keys(creds: AwsCredentials) -> dict[str, Optional[str]]:
    if not creds.aws_access_key_id:
        return {}
    return {
        "aws_access_key_id": creds.aws_access_key_id,
        "aws_secret_access_key": creds.aws_secret_access_key.get_secret_value() if creds.aws_secret_access_key else None,
        "aws_session_token": creds.aws_session_token.get_secret_value() if creds.aws_session_token else None,
    }
