"""Who may call: bearer tokens, the OAuth token endpoint for service-account keys, IAM denials.

By default any caller is let in, with or without ``Authorization: Bearer``
(the official clients send none with ``AnonymousCredentials``). A test can
require a token (missing -> 401 ``CREDENTIALS_MISSING``), refuse some tokens
(401, as Google answers an invalid token) and deny IAM permissions (403
``IAM_PERMISSION_DENIED`` naming the permission). ``POST /token`` is a
JWT-bearer grant endpoint: a service-account key whose ``token_uri`` points
here gets a token, so clients that refresh credentials (googleapiclient)
work unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..kit import Response, bearer_token
from .errors import permission_denied, unauthenticated

TOKEN_PATH = "/token"


@dataclass
class Auth:
    required: bool = False
    """Refuse calls without ``Authorization: Bearer`` (401)."""
    invalid_tokens: set[str] = field(default_factory=set)
    """Bearer tokens answered 401 "invalid authentication credentials"."""
    denied_permissions: set[str] = field(default_factory=set)
    """IAM permissions the caller lacks (``run.jobs.runWithOverrides``...): calls needing them get 403."""

    def check_caller(self, headers: Mapping[str, str]) -> None:
        token = bearer_token(headers)
        if token and token in self.invalid_tokens:
            raise unauthenticated(token_sent=True)
        if self.required and not token:
            raise unauthenticated(token_sent=token is not None)

    def check_permission(self, permission: str, resource: str) -> None:
        if permission in self.denied_permissions:
            raise permission_denied(permission, resource)


class TokenEndpoint:
    """Answers OAuth 2.0 token requests with a fresh opaque access token."""

    def __init__(self) -> None:
        self._serial = itertools.count(1)
        self.issued: list[str] = []

    def answer(self) -> Response:
        token = f"emulator-token-{next(self._serial)}"
        self.issued.append(token)
        return Response.json(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})
