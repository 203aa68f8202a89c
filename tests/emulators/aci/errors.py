"""ARM errors as the emulator answers them: ``{"error": {"code", "message", "details"?}}``.

Codes and texts follow what the real service was seen answering (the
README lists the sources and which texts are best guesses). azure-core maps
401 to ClientAuthenticationError, 404 to ResourceNotFoundError, 409 to
ResourceExistsError and anything else to HttpResponseError, with
``e.error.code`` read from the body.
"""

from __future__ import annotations

import math
from typing import Any

from ..kit import CloudError

ARM_THROTTLE_HELP = "Refer to https://aka.ms/arm-throttling for additional information."


class ArmError(CloudError):
    def __init__(self, status: int, code: str, message: str, *, details: list[dict] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(status, code, message, headers=headers)
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def retry_after(seconds: float) -> dict[str, str]:
    """ARM sends whole seconds; a partial second is rounded up so the client never comes back early."""
    return {"Retry-After": str(max(0, math.ceil(seconds)))}


# -- the request itself ------------------------------------------------------------------------------


def missing_api_version() -> ArmError:
    return ArmError(400, "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.")


def unsupported_api_version(version: str, resource_type: str, supported: list[str]) -> ArmError:
    return ArmError(400, "NoRegisteredProviderFound",
                    f"No registered resource provider found for location 'global' and API version '{version}' "
                    f"for type '{resource_type}'. The supported api-versions are '{', '.join(supported)}'.")


def unauthenticated(missing: bool) -> ArmError:
    what = "is missing" if missing else "is provided in an invalid format"
    return ArmError(401, "AuthenticationFailed", f"Authentication failed. The 'Authorization' header {what}.")


def invalid_subscription(subscription: str) -> ArmError:
    return ArmError(400, "InvalidSubscriptionId",
                    f"The provided subscription identifier '{subscription}' is malformed or invalid.")


def subscription_not_found(subscription: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")


def no_route(method: str, path: str) -> ArmError:
    return ArmError(404, "NoRegisteredProviderFound" if "/providers/" in path else "InvalidResourceType",
                    f"The emulator has no ARM operation for '{method} {path}'.")


def method_not_allowed(method: str, path: str) -> ArmError:
    return ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.")


def invalid_request_content(reason: str) -> ArmError:
    return ArmError(400, "InvalidRequestContent",
                    f"The request content was invalid and could not be deserialized: '{reason}'.")


# -- resources ---------------------------------------------------------------------------------------


def resource_group_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def resource_not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def conflict(message: str) -> ArmError:
    return ArmError(409, "Conflict", message)


def bad_request(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


# -- faults, quotas and capacity -----------------------------------------------------------------


def subscription_throttled(subscription: str, operation: str, wait_s: float) -> ArmError:
    seconds = max(0, math.ceil(wait_s))
    return ArmError(429, "SubscriptionRequestsThrottled",
                    f"Number of requests for subscription '{subscription}' and operation '{operation}' exceeded "
                    f"the backend storage limit. Please try again after '{seconds}' seconds. {ARM_THROTTLE_HELP}",
                    headers=retry_after(wait_s))


def action_throttled(action: str, limit: int, window: str, wait_s: float) -> ArmError:
    """A resource provider's own rate (ACI's create and delete quotas), as ARM words RP throttling."""
    seconds = max(0, math.ceil(wait_s))
    return ArmError(429, "ResourceRequestsThrottled",
                    f"Number of requests for action '{action}' exceeded the limit of '{limit}' for time interval "
                    f"'{window}'. Please try again after '{seconds}' seconds.", headers=retry_after(wait_s))


def service_unavailable(retry_after_s: float | None = None) -> ArmError:
    return ArmError(503, "ServiceUnavailable", "The service is currently unavailable. Please try again later.",
                    headers=retry_after(retry_after_s) if retry_after_s is not None else None)


def internal_server_error(activity_id: str) -> ArmError:
    return ArmError(500, "InternalServerError",
                    f"Encountered an internal server error. The tracking activity id is '{activity_id}', "
                    f"correlation id is '{activity_id}'.")


def capacity_unavailable(location: str, cpu: float, memory_gb: float, os_type: str) -> ArmError:
    """What ACI answers (409!) when a region cannot place the requested size."""
    return ArmError(409, "ServiceUnavailable",
                    f"The requested resource is not available in the location '{location}' at this moment. Please "
                    "retry with a different resource request or in another location. Resource requested: "
                    f"'{_num(cpu)}' CPU '{_num(memory_gb)}' GB memory '{os_type}' OS")


def quota_reached(quota: str, location: str, limit: float, usage: float, requested: float) -> ArmError:
    return ArmError(400, "ContainerGroupQuotaReached",
                    f"Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota '{quota}' "
                    f"exceeded in region '{location}'. Limit: '{_num(limit)}', Usage: '{_num(usage)}' "
                    f"Requested: '{_num(requested)}'.")


def inaccessible_image(image: str, group: str) -> ArmError:
    return ArmError(400, "InaccessibleImage", f"The image '{image}' in container group '{group}' is not accessible. "
                                              "Please check the image and registry credential.")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
