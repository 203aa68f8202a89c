"""SDK clients: shared per credential set, STS assume-role (stubbed: the emulator has no STS)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiobotocore.session import AioSession
from aiobotocore.stub import AioStubber

from providers.ecs import clients as clients_module
from providers.ecs.clients import AwsClients
from providers.ecs.config import EcsSettings
from providers.ecs.credentials import AwsCredentials

ROLE = "arn:aws:iam::123456789012:role/dispatch"


class _Borrowed:
    """An async context manager handing out an already open client without closing it."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def __aenter__(self) -> Any:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_assume_role_signs_with_the_roles_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    async with AioSession().create_client("sts", region_name="us-east-1", aws_access_key_id="AKIABASE",
                                          aws_secret_access_key="base-secret") as sts:
        with AioStubber(sts) as stubber:
            expiry = datetime.now(timezone.utc) + timedelta(hours=1)
            issued = {"AccessKeyId": "ASIAROLEKEY12345678", "SecretAccessKey": "role-secret", "SessionToken": "role-token",
                      "Expiration": expiry}
            stubber.add_response("assume_role", {"Credentials": issued},
                                 {"RoleArn": ROLE, "RoleSessionName": "prefect-push-dispatcher", "ExternalId": "ext-1"})

            class Session(AioSession):
                def create_client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
                    return _Borrowed(sts) if service_name == "sts" else super().create_client(service_name, *args, **kwargs)

            monkeypatch.setattr(clients_module, "AioSession", Session)
            clients = AwsClients(EcsSettings())
            creds = AwsCredentials(aws_access_key_id="AKIABASE", aws_secret_access_key="base-secret",
                                   region_name="us-east-1", assume_role_arn=ROLE,
                                   assume_role_kwargs={"ExternalId": "ext-1"})
            try:
                ecs = await clients.client("ecs", creds)
                logs = await clients.client("logs", creds)
                frozen = await ecs._request_signer._credentials.get_frozen_credentials()
                issued_keys = ("ASIAROLEKEY12345678", "role-secret", "role-token")
                assert (frozen.access_key, frozen.secret_key, frozen.token) == issued_keys
                assert logs._request_signer._credentials is ecs._request_signer._credentials  # one session per set
                stubber.assert_no_pending_responses()
            finally:
                await clients.aclose()


async def test_clients_are_shared_per_credential_set_and_closed() -> None:
    clients = AwsClients(EcsSettings())
    one = AwsCredentials(aws_access_key_id="AKIA1", aws_secret_access_key="s", region_name="eu-west-1")
    two = AwsCredentials(aws_access_key_id="AKIA2", aws_secret_access_key="s", region_name="eu-west-1")
    first = await clients.client("ecs", one)
    assert await clients.client("ecs", one.model_copy()) is first
    assert await clients.client("ecs", two) is not first
    assert first.meta.region_name == "eu-west-1" and clients.created == 2
    await clients.aclose()
    assert await clients.client("ecs", one) is not first  # reopened after aclose
    await clients.aclose()
