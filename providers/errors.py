"""The one error tree every provider raises.

SDK exceptions (botocore, google-api-core, azure-core, OSError...) are caught at
the provider boundary and translated into one of these. The dispatcher decides
what to do from the *class* alone: transient errors are retried under a
deadline, permanent ones end the run with the message. Messages must never
contain secrets: build them from request identifiers and SDK error codes, never
from request bodies or credentials.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

#: Job variables of every provider whose values may hold secrets (each provider adds its own ``secret_fields``).
ALWAYS_SECRET_FIELDS = ("env",)


class ProviderError(Exception):
    """Base of every error a provider raises."""

    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return f"{self.message} ({self.code})" if self.code else self.message


class TransientProviderError(ProviderError):
    """The cloud may accept the same call later (5xx, timeouts, connection errors)."""

    retryable = True


class ThrottledError(TransientProviderError):
    """The cloud asked us to slow down (HTTP 429, ThrottlingException...)."""


class CapacityError(TransientProviderError):
    """The cloud has no capacity for this request right now (ECS RESOURCE:*, AGENT)."""


class PermanentProviderError(ProviderError):
    """Retrying the same call will not help."""


class InvalidJobConfiguration(PermanentProviderError):
    """A job variable is malformed or outside what the infrastructure allows.

    Raised by pure validation before any API call; the message names the field,
    the value and what is allowed.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        super().__init__(f"{field}={value!r} is not allowed: {allowed}", code="InvalidJobConfiguration")
        self.field = field
        self.value = value
        self.allowed = allowed


class CredentialsError(PermanentProviderError):
    """Credentials are missing, invalid or lack a permission."""


class InfrastructureNotFound(PermanentProviderError):
    """The infrastructure does not exist (any more). Stop treats this as success."""


class SubmissionRejected(PermanentProviderError):
    """The cloud refused to start the infrastructure for a reason retries cannot fix."""


def invalid_configuration(exc: ValidationError, secret_fields: Iterable[str]) -> InvalidJobConfiguration:
    """The first error of a job configuration that failed validation, in the user's words.

    Scalars are shown as given; values under ``secret_fields`` (the provider's
    ``secret_fields``), under ``env``, and structures are not.
    """
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or "job_variables"
    value = first.get("input")
    hidden = {*ALWAYS_SECRET_FIELDS, *secret_fields}
    if field.split(".")[0] in hidden or not isinstance(value, (str, int, float, bool, type(None))):
        value = f"<{type(value).__name__}>"
    elif isinstance(value, str) and len(value) > 80:
        value = value[:77] + "..."
    return InvalidJobConfiguration(field, value, first.get("msg", "invalid value"))
