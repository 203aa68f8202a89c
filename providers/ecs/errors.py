"""botocore exceptions -> the provider error tree, in one place, at the SDK boundary.

Every SDK call of the ECS provider runs inside :func:`aws_errors`. Messages are
built from the operation, the error code and AWS's message with quoted values
and known secrets removed: AWS validation messages echo parameter values
("Value '...' at 'overrides...environment.1.member.value'"), which may be an
API key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from providers.errors import (
    CapacityError,
    CredentialsError,
    InfrastructureNotFound,
    InvalidJobConfiguration,
    PermanentProviderError,
    ProviderError,
    ThrottledError,
    TransientProviderError,
)

THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown",
    "ProvisionedThroughputExceededException", "BandwidthLimitExceeded", "EC2ThrottledException",
})
TRANSIENT_CODES = frozenset({
    "ServerException", "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure",
    "InternalError", "InternalServerError", "InternalServerException", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete",
})
#: An account limit (e.g. concurrent Fargate tasks) that frees up as other tasks end.
CAPACITY_CODES = frozenset({"LimitExceededException"})
CREDENTIAL_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
    "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "RequestExpired",
    "InvalidSignatureException", "SignatureDoesNotMatch", "MissingAuthenticationTokenException",
    "IncompleteSignatureException", "AuthFailure", "OptInRequired", "InvalidAccessKeyId",
})
NOT_FOUND_CODES = frozenset({"ClusterNotFoundException", "ResourceNotFoundException", "TaskNotFoundException"})
_TRANSIENT_SDK = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError, HTTPClientError)
_CREDENTIAL_SDK = (NoCredentialsError, PartialCredentialsError, ProfileNotFound, CredentialRetrievalError)
_QUOTED_VALUE = re.compile(r"(Value) '[^']*'", re.IGNORECASE)
MESSAGE_MAX = 400


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """AWS's message without echoed values or known secrets, shortened."""
    text = _QUOTED_VALUE.sub(r"\1 '***'", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 3] + "..."


def is_throttling(code: str) -> bool:
    return code in THROTTLING_CODES or code.startswith("Throttl")


def translate_client_error(
    exc: ClientError, operation: str, permanent: type[PermanentProviderError], secrets: Iterable[str] = ()
) -> ProviderError:
    error = exc.response.get("Error") or {}
    code = str(error.get("Code") or "Unknown")
    status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    message = f"AWS {operation} failed: {scrub(str(error.get('Message') or ''), secrets) or code}"
    if is_throttling(code):
        return ThrottledError(message, code=code)
    if code in CAPACITY_CODES:
        return CapacityError(message, code=code)
    if code in TRANSIENT_CODES or status >= 500:
        return TransientProviderError(message, code=code)
    if code in CREDENTIAL_CODES:
        return CredentialsError(message, code=code)
    return permanent(message, code=code)


def translate_sdk_error(exc: BotoCoreError, operation: str) -> ProviderError:
    """Errors raised before or instead of an AWS answer; their text holds no request values except
    ParamValidationError's, which is therefore reduced to its class."""
    name = type(exc).__name__
    if isinstance(exc, _TRANSIENT_SDK):
        return TransientProviderError(f"AWS {operation} could not reach AWS: {exc}", code=name)
    if isinstance(exc, _CREDENTIAL_SDK):
        return CredentialsError(f"AWS {operation}: no usable AWS credentials ({exc})", code=name)
    if isinstance(exc, NoRegionError):
        return InvalidJobConfiguration(
            "aws_credentials.region_name", None,
            "an AWS region: set region_name in the AWS credentials block or region_name in the ECS provider settings",
        )
    if isinstance(exc, ParamValidationError):
        return PermanentProviderError(f"AWS {operation}: the request does not fit the API model", code=name)
    return PermanentProviderError(f"AWS {operation} failed in the SDK ({name})", code=name)


@contextmanager
def aws_errors(
    operation: str, permanent: type[PermanentProviderError] = PermanentProviderError, secrets: Iterable[str] = ()
) -> Iterator[None]:
    """Let provider errors through; turn every botocore exception into a provider error."""
    try:
        yield
    except ProviderError:
        raise
    except ClientError as exc:
        raise translate_client_error(exc, operation, permanent, secrets) from None
    except BotoCoreError as exc:
        raise translate_sdk_error(exc, operation) from None
    except (TimeoutError, ConnectionError) as exc:  # aiohttp/asyncio errors aiobotocore let through
        raise TransientProviderError(f"AWS {operation} could not reach AWS ({type(exc).__name__})",
                                     code=type(exc).__name__) from None


def is_not_found(error: ProviderError) -> bool:
    """The resource does not exist: a missing cluster, or ECS's "The referenced task was not found"."""
    if isinstance(error, InfrastructureNotFound) or error.code in NOT_FOUND_CODES:
        return True
    return error.code in ("InvalidParameterException", "ClientException") and "not found" in error.message.lower()
