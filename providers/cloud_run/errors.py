"""Admin API answers and transport failures -> the provider error tree, in one place.

Google's REST error body is ``{"error": {"code": <http>, "message", "status": <canonical code>,
"details": [...]}}``. The class follows the HTTP status (as google-api-core's
``from_http_status`` does: 409 is a conflict whatever ``status`` says); the message is
Google's, with known secret values removed and shortened, because a 400 may echo a request
field (an env value is a request field).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Optional

from providers.errors import (
    CredentialsError,
    InfrastructureNotFound,
    PermanentProviderError,
    ProviderError,
    ThrottledError,
    TransientProviderError,
)

MESSAGE_MAX = 400
#: Statuses Google documents as "retry with backoff" (500 INTERNAL, 502, 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED).
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


class CloudRunApiError(PermanentProviderError):
    """A permanent Admin API refusal; ``status`` is the HTTP status, ``code`` Google's canonical code."""

    def __init__(self, message: str, *, code: Optional[str], status: int) -> None:
        super().__init__(message, code=code)
        self.status = status


class ConflictError(CloudRunApiError):
    """409 ALREADY_EXISTS / ABORTED: the resource exists (CreateJob: reuse it)."""


class FailedPrecondition(CloudRunApiError):
    """400 FAILED_PRECONDITION: e.g. :run on a job that is not Ready, :cancel on a finished execution."""


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 3] + "..."


def _body(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        return {}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}


def retry_after_s(headers: Any) -> Optional[float]:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare on Google APIs; the pacer's own backoff applies


class Throttled(ThrottledError):
    """429 RESOURCE_EXHAUSTED, with Google's Retry-After when it sends one."""

    def __init__(self, message: str, *, code: Optional[str], retry_after: Optional[float]) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


def translate(operation: str, status: int, raw: bytes, headers: Any = None,
              secrets: Iterable[str] = ()) -> ProviderError:
    """The provider error for an HTTP answer that is not 2xx."""
    error = _body(raw)
    code = str(error.get("status") or f"HTTP_{status}")
    text = scrub(str(error.get("message") or raw[:200].decode("utf-8", "replace") or code), secrets)
    message = f"Cloud Run {operation} failed: {text}"
    if status == 429:
        return Throttled(message, code=code, retry_after=retry_after_s(headers))
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientProviderError(message, code=code)
    if status in (401, 403):
        return CredentialsError(message, code=code)
    if status == 404:
        return InfrastructureNotFound(message, code=code)
    if status == 409:
        return ConflictError(message, code=code, status=status)
    if code == "FAILED_PRECONDITION":
        return FailedPrecondition(message, code=code, status=status)
    return CloudRunApiError(message, code=code, status=status)


def transport_error(operation: str, exc: BaseException) -> TransientProviderError:
    """No answer (connection refused, reset, timeout): the call may or may not have been carried out."""
    return TransientProviderError(f"Cloud Run {operation} got no answer ({type(exc).__name__})",
                                  code=type(exc).__name__)


def is_not_found(error: ProviderError) -> bool:
    return isinstance(error, InfrastructureNotFound)
