"""azure-core exceptions -> the provider error tree, in one place, at the SDK boundary.

Every SDK call of the ACI provider runs inside :func:`azure_errors`. Messages are built
from the operation, ARM's error code and ARM's message with known secrets removed;
``Retry-After`` of a 429 travels on the error (``retry_after_s``) so the pacer can honour it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Optional

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from providers.errors import (
    CapacityError,
    CredentialsError,
    InfrastructureNotFound,
    PermanentProviderError,
    ProviderError,
    ThrottledError,
    TransientProviderError,
)

#: ARM codes that free up as other groups end or capacity returns: retry until the submit deadline.
CAPACITY_CODES = frozenset({"ContainerGroupQuotaReached", "ServiceUnavailable", "SkuNotAvailable",
                            "RegionCapacityUnavailable"})
CREDENTIAL_CODES = frozenset({"AuthorizationFailed", "AuthenticationFailed", "InvalidAuthenticationToken",
                              "ExpiredAuthenticationToken", "LinkedAuthorizationFailed"})
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "NotFound", "ContainerGroupNotFound"})
TRANSIENT_CODES = frozenset({"InternalServerError", "ServiceUnavailable", "GatewayTimeout", "RetryableError",
                             "Conflict", "AnotherOperationInProgress"})
MESSAGE_MAX = 400


#: ARM's own per-subscription buckets (reads/writes/deletes per second), shared by every kind of call: a 429 of
#: theirs says "wait", not "this quota's rate is wrong".
ARM_BUCKET_CODES = frozenset({"SubscriptionRequestsThrottled", "TenantRequestsThrottled"})


class AzureThrottled(ThrottledError):
    """A 429 from ARM or ACI, with its Retry-After."""

    def __init__(self, message: str, *, code: Optional[str], retry_after_s: Optional[float]) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s

    def slow(self, pacer: Any) -> None:
        """Tell the pacer of the quota this call drew on: a quota's own 429 slows it down (AIMD); ARM's
        front-end bucket only pauses it for the Retry-After."""
        if self.code in ARM_BUCKET_CODES and self.retry_after_s:
            pacer.pause(self.retry_after_s)
        else:
            pacer.throttled(self.retry_after_s)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 3] + "..."


def _retry_after(exc: HttpResponseError) -> Optional[float]:
    response = exc.response
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def translate(exc: AzureError, operation: str, permanent: type[PermanentProviderError],
              secrets: Iterable[str] = ()) -> ProviderError:
    if isinstance(exc, ClientAuthenticationError) and not isinstance(exc, HttpResponseError):
        return CredentialsError(f"Azure {operation}: no usable Azure credentials ({type(exc).__name__})",
                                code=type(exc).__name__)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return TransientProviderError(f"Azure {operation} could not reach ARM ({type(exc).__name__})",
                                      code=type(exc).__name__)
    if not isinstance(exc, HttpResponseError):
        return PermanentProviderError(f"Azure {operation} failed in the SDK ({type(exc).__name__})",
                                      code=type(exc).__name__)
    status = exc.status_code or 0
    code = (exc.error.code if exc.error is not None else None) or str(status or "Unknown")
    detail = exc.error.message if exc.error is not None and exc.error.message else exc.reason or ""
    message = f"Azure {operation} failed: {scrub(str(detail), secrets) or code}"
    if status == 429:
        return AzureThrottled(message, code=code, retry_after_s=_retry_after(exc))
    if code in CAPACITY_CODES and status in (400, 409):
        return CapacityError(message, code=code)
    if status >= 500 or code in TRANSIENT_CODES or status in (408,):
        return TransientProviderError(message, code=code)
    if status in (401, 403) or code in CREDENTIAL_CODES:
        return CredentialsError(message, code=code)
    if isinstance(exc, ResourceNotFoundError) or (status == 404 and code in NOT_FOUND_CODES):
        return InfrastructureNotFound(message, code=code)
    return permanent(message, code=code)


@contextmanager
def azure_errors(operation: str, permanent: type[PermanentProviderError] = PermanentProviderError,
                 secrets: Iterable[str] = ()) -> Iterator[None]:
    """Let provider errors through; turn every azure-core exception into a provider error."""
    try:
        yield
    except ProviderError:
        raise
    except AzureError as exc:
        raise translate(exc, operation, permanent, secrets) from None
    except (TimeoutError, ConnectionError) as exc:  # aiohttp errors azure-core let through
        raise TransientProviderError(f"Azure {operation} could not reach ARM ({type(exc).__name__})",
                                     code=type(exc).__name__) from None


def is_not_found(error: ProviderError) -> bool:
    return isinstance(error, InfrastructureNotFound) or error.code in NOT_FOUND_CODES
