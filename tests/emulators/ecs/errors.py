"""AWS JSON-protocol errors as the emulator raises them.

botocore reads the error code from the body's ``__type`` (dropping any
``namespace#`` prefix) and the text from ``message``; the HTTP status decides
whether its retry logic treats the error as a server fault.
"""

from __future__ import annotations

from typing import Any

from ..kit import CloudError


class AwsError(CloudError):
    """An error answered to the client as ``{"__type": code, "message": ...}`` (the JSON protocol)."""

    content_type = "application/x-amz-json-1.1"

    def __init__(self, code: str, message: str, status: int = 400, **extra: Any):
        super().__init__(status, code, message)
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, **self.extra}


def client_error(message: str) -> AwsError:
    return AwsError("ClientException", message)


def invalid_parameter(message: str) -> AwsError:
    return AwsError("InvalidParameterException", message)


def cluster_not_found() -> AwsError:
    return AwsError("ClusterNotFoundException", "Cluster not found.")


def server_error(message: str = "Service Unavailable. Please try again later.") -> AwsError:
    return AwsError("ServerException", message, status=500)


def throttled() -> AwsError:
    return AwsError("ThrottlingException", "Rate exceeded", status=400)
