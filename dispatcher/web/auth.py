"""Bearer tokens of the usage API and page: who is calling, and may they read this workspace.

A presented token is hashed (sha256) and compared with every configured token's hash with
``hmac.compare_digest``, all of them each time, so neither the answer's content nor its timing
tells how much of a guess was right or which token it resembled. Tokens never reach logs,
metrics, responses or exceptions: only a token's configured *name* is ever shown.

401: no token, or one we do not know. 403: a known token that may not do this (another
workspace, or a change with a read token). The bodies say only that.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request
from dispatcher.config.usage import ApiConfig, ApiRole, ApiToken

#: The page keeps the token in this cookie (HttpOnly, SameSite=Strict) after its form was submitted.
COOKIE = "dispatcher_usage_token"


class Unauthenticated(HTTPException):
    def __init__(self) -> None:
        super().__init__(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


class Forbidden(HTTPException):
    def __init__(self, what: str) -> None:
        super().__init__(403, f"this token may not {what}")


class TokenBook:
    """The configured tokens, by hash."""

    def __init__(self, api: ApiConfig) -> None:
        self._tokens = [(token, token.digest()) for token in api.tokens]
        metrics = api.metrics_token
        self._metrics_digest = _digest(metrics.get_secret_value()) if metrics else None

    def identify(self, presented: str | None) -> ApiToken | None:
        """The token ``presented`` is, or None; constant time over the configured tokens."""
        digest = _digest(presented or "")
        found = None
        for token, expected in self._tokens:
            if hmac.compare_digest(digest, expected) and presented:
                found = token
        return found

    def may_scrape(self, request: Request) -> bool:
        """/metrics: open unless ``api.metrics_token`` is set."""
        if self._metrics_digest is None:
            return True
        presented = bearer_token(request)
        return hmac.compare_digest(_digest(presented or ""), self._metrics_digest) and bool(presented)

    def authorise(self, presented: str | None, workspace: str, role: ApiRole = ApiRole.READ) -> ApiToken:
        """The caller's token if it may act on ``workspace`` in ``role``; else 401 or 403."""
        token = self.identify(presented)
        if token is None:
            raise Unauthenticated()
        if not token.allows(workspace):
            raise Forbidden("read this workspace")
        if role == ApiRole.ADMIN and token.role != ApiRole.ADMIN:
            raise Forbidden("change budgets (it is a read token)")
        return token

    def readable(self, presented: str | None, workspaces: list[str]) -> list[str]:
        token = self.identify(presented)
        if token is None:
            raise Unauthenticated()
        return [name for name in workspaces if token.allows(name)]


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if there is one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def page_token(request: Request) -> str | None:
    """The page also accepts the cookie its token form sets (a browser cannot send a header on navigation)."""
    return bearer_token(request) or request.cookies.get(COOKIE) or None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
