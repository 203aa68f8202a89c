"""Google API errors as the Cloud Run Admin API answers them over REST.

The body is ``{"error": {"code": <http>, "message", "status": <canonical code>, "details": [...]}}``;
google-api-core maps the HTTP status to its exception (409 -> ``Conflict``,
404 -> ``NotFound``...) and keeps ``details``, so field violations
(``google.rpc.BadRequest``) and ``google.rpc.ErrorInfo`` reasons reach the caller.
"""

from __future__ import annotations

from typing import Any

from ..kit import CloudError

BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
SERVICE = "run.googleapis.com"

RPC_CODES = {"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
             "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
             "FAILED_PRECONDITION": 9, "ABORTED": 10, "INTERNAL": 13, "UNAVAILABLE": 14,
             "UNAUTHENTICATED": 16, "UNIMPLEMENTED": 12}
"""google.rpc.Code numbers, for ``Operation.error`` and ``TaskAttemptResult.status``."""


class GoogleError(CloudError):
    """``status`` is the HTTP status, ``code`` the canonical code (``NOT_FOUND``), as in the body."""

    content_type = "application/json; charset=UTF-8"

    def __init__(self, http_status: int, code: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(http_status, code, message)
        self.details = details or []

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.status, "message": self.message, "status": self.code}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def _error_info(reason: str, **metadata: str) -> dict[str, Any]:
    return {"@type": ERROR_INFO, "reason": reason, "domain": "googleapis.com", "metadata": {"service": SERVICE,
                                                                                         **metadata}}


def invalid_argument(message: str, violations: list[tuple[str, str]] | None = None) -> GoogleError:
    """400 with a ``google.rpc.BadRequest`` naming each offending field."""
    pairs = violations if violations is not None else []
    details = [{"@type": BAD_REQUEST, "fieldViolations": [{"field": f, "description": d} for f, d in pairs]}]
    return GoogleError(400, "INVALID_ARGUMENT", message, details if pairs else None)


def field_errors(violations: list[tuple[str, str]]) -> GoogleError:
    message = "; ".join(f"{field}: {description}" for field, description in violations)
    return invalid_argument(message, violations)


def failed_precondition(message: str) -> GoogleError:
    return GoogleError(400, "FAILED_PRECONDITION", message)


def not_found(kind: str, short_name: str, region: str, project: str) -> GoogleError:
    return GoogleError(404, "NOT_FOUND", f"Resource '{short_name}' of kind '{kind}' in region '{region}' "
                                         f"in project '{project}' does not exist.")


def already_exists(short_name: str) -> GoogleError:
    return GoogleError(409, "ALREADY_EXISTS", f"Resource '{short_name}' already exists.")


def no_such_method(method: str, path: str) -> GoogleError:
    return GoogleError(404, "NOT_FOUND", f"The requested URL {path} was not found on this server. ({method})")


def unimplemented(op: str) -> GoogleError:
    return GoogleError(501, "UNIMPLEMENTED", f"The Cloud Run emulator does not implement {op}.")


def throttled() -> GoogleError:
    return GoogleError(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).",
                       [_error_info("RATE_LIMIT_EXCEEDED")])


def quota_exceeded(metric: str, limit: str, project: str) -> GoogleError:
    message = (f"Quota exceeded for quota metric '{metric}' and limit '{limit}' of service '{SERVICE}' "
               f"for consumer 'project_number:{project}'.")
    return GoogleError(429, "RESOURCE_EXHAUSTED", message, [_error_info(
        "RATE_LIMIT_EXCEEDED", quota_metric=f"{SERVICE}/{metric}", quota_limit=limit, consumer=f"projects/{project}")])


def no_capacity(region: str) -> GoogleError:
    """RunJob when the region has no instances to give (the emulator's wording: Google documents no text for
    jobs; "no available instance" is what Cloud Run answers requests it cannot place)."""
    return GoogleError(429, "RESOURCE_EXHAUSTED", f"The request was aborted because there was no available "
                       f"instance in region {region}. Please try again later.")


def unavailable() -> GoogleError:
    return GoogleError(503, "UNAVAILABLE", "The service is currently unavailable.")


def internal(message: str = "Internal error encountered.") -> GoogleError:
    return GoogleError(500, "INTERNAL", message)


def unauthenticated(token_sent: bool) -> GoogleError:
    if token_sent:
        return GoogleError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 "
                           "access token, login cookie or other valid authentication credential.",
                           [_error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED")])
    return GoogleError(401, "UNAUTHENTICATED", "Request is missing required authentication credential. Expected "
                       "OAuth 2 access token, login cookie or other valid authentication credential.",
                       [_error_info("CREDENTIALS_MISSING")])


def permission_denied(permission: str, resource: str) -> GoogleError:
    return GoogleError(403, "PERMISSION_DENIED", f"Permission '{permission}' denied on resource '{resource}' "
                       "(or it may not exist).", [_error_info("IAM_PERMISSION_DENIED", permission=permission,
                                                              resource=resource)])
