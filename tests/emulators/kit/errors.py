"""``CloudError``: the error every protocol raises below ``handle`` and answers with one call.

Each cloud's error has an HTTP status, the cloud's error code (ECS
``ThrottlingException``, Google ``RESOURCE_EXHAUSTED``, ARM
``SubscriptionRequestsThrottled``), a message, and sometimes headers of its
own (ARM's ``Retry-After``). Only the JSON body differs, so a cloud
subclasses ``CloudError`` with its ``body()`` (and ``content_type``):

- AWS JSON protocol: ``{"__type": code, "message": ...}``
- Google REST: ``{"error": {"code": <http status>, "message", "status": code, "details"}}``
- ARM: ``{"error": {"code", "message", "details"?}}``

and its protocol answers ``exc.response(headers)`` with the headers every
answer carries (request ids); the error's own headers win.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .http import Response


class CloudError(Exception):
    content_type = "application/json"

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> Any:
        """The cloud's JSON error body."""
        raise NotImplementedError

    def response(self, headers: Mapping[str, str] | None = None) -> Response:
        """The answer: ``headers`` (those of every answer), then the error's own."""
        return Response.json(self.status, self.body(), self.content_type, {**(headers or {}), **self.headers})
