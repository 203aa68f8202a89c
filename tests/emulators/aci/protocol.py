"""ARM request handling, independent of the HTTP server.

Order of checks, as ARM's front door does them: a known path (and method);
``api-version`` present and served by the resource provider; a Bearer token;
a well-formed subscription id that is ours; then the RBAC actions are
recorded, ARM's subscription buckets and the fault knobs apply, the body is
parsed, and the operation runs. Every answer carries ``x-ms-request-id``,
``x-ms-correlation-request-id`` and the remaining-quota header of its kind;
every body is checked against the SDK model before it leaves (a misfit is an
emulator bug, recorded in ``errors``, answered 500).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from ..kit import CallLog, Request, Response, ResponseGuard, WireErrors, bearer_token
from . import errors
from .backend import Backend
from .faults import ARM_SUBSCRIPTION_LIMITS, AciFaultDice
from .handlers import Answer, Call, Handler
from .routes import ACI_API_VERSIONS, RESOURCES_API_VERSIONS, Route, linked_access_permissions, match
from .schema import RESPONSE_CHECKER

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RESOURCE_TYPES = {"aci": "containerGroups", "resources": "deployments"}


class ArmProtocol:
    def __init__(self, backend: Backend, dice: AciFaultDice, calls: CallLog, errors_log: list[str],
                 handlers: dict[str, Handler], validate_responses: bool = True):
        self.backend, self.dice, self.calls, self.errors = backend, dice, calls, errors_log
        self.handlers = handlers
        self.guard = ResponseGuard(RESPONSE_CHECKER, errors_log, enabled=validate_responses)
        self.wire = WireErrors(
            throttle=lambda: errors.subscription_throttled(backend.subscription, "requests",
                                                           dice.faults.throttle_retry_after_s),
            server_error=errors.service_unavailable,
            lost_response=lambda: errors.internal_server_error(str(uuid.uuid4())),
            accept_then_fail=errors.service_unavailable,
        )

    def handle(self, request: Request) -> Response:
        found = match(request.method, request.path)
        route, params = found.route, found.params
        if route is not None:
            self.calls.record(route.op)  # every request, faulted or not
        headers = {"x-ms-request-id": str(uuid.uuid4()),
                   "x-ms-correlation-request-id": request.headers.get("x-ms-client-request-id") or str(uuid.uuid4())}
        try:
            if route is None:
                raise (errors.method_not_allowed if found.path_known else errors.no_route)(request.method, request.path)
            answer = self._serve(request, route, params, headers)
        except errors.ArmError as exc:
            return exc.response(headers)
        headers.update(answer.headers)
        if answer.payload is None:
            return Response(answer.status, b"", headers)
        return Response.json(answer.status, answer.payload, headers=headers)

    def _serve(self, request: Request, route: Route, params: dict[str, str], headers: dict[str, str]) -> Answer:
        version = request.arg("api-version")
        self._check_api_version(version, route)
        self._check_auth(request.headers)
        self._check_subscription(params["sub"])
        self.calls.record_permission(*route.permissions)
        headers.update(self._subscription_bucket(route))
        if self.dice.faults.outage:
            raise errors.service_unavailable()
        self.dice.before_call(route.op, self.wire)
        call = Call({**params, "_path": request.path}, self._parse(request), request.query_params,
                    _base_url(request.headers))
        if route.op in ("ContainerGroups_CreateOrUpdate", "ContainerGroups_Update"):
            linked = linked_access_permissions(call.body)
            if linked:
                self.calls.record_permission(*linked)
        with self.backend.lock:
            self.backend.tick()
            answer = self.handlers[route.op](self.backend, call)
        self.dice.after_call(route.op, self.wire, mutating=route.mutating)
        if route.op == "ContainerGroups_CreateOrUpdate" and answer.status == 201 and self.dice.outage_after_create():
            raise errors.service_unavailable()
        if answer.output is not None and self.guard.broken(route.op, answer.output, answer.payload):
            raise errors.ArmError(500, "InternalServerError", f"Emulator: the {route.op} answer breaks its model")
        return answer

    @staticmethod
    def _check_api_version(version: str | None, route: Route) -> None:
        if not version:
            raise errors.missing_api_version()
        served = ACI_API_VERSIONS if route.provider == "aci" else RESOURCES_API_VERSIONS
        if version not in served:
            raise errors.unsupported_api_version(version, RESOURCE_TYPES[route.provider], list(served))

    @staticmethod
    def _check_auth(headers: Mapping[str, str]) -> None:
        token = bearer_token(headers)
        if not token:
            raise errors.unauthenticated(missing=token is None)

    def _check_subscription(self, subscription: str) -> None:
        if not GUID.match(subscription):
            raise errors.invalid_subscription(subscription)
        if subscription.lower() != self.backend.subscription.lower():
            raise errors.subscription_not_found(subscription)

    def _subscription_bucket(self, route: Route) -> dict[str, str]:
        """ARM's per-subscription bucket of this call's kind: enforced if ``arm_limits`` is set."""
        kind = route.limit_kind
        header = f"x-ms-ratelimit-remaining-subscription-{kind}"
        limits = self.dice.faults.arm_limits
        if limits is None or kind not in limits:
            return {header: str(int(ARM_SUBSCRIPTION_LIMITS[kind].burst) - 1)}
        limit = limits[kind]
        if not self.dice.admit(f"arm:{kind}", limit):
            raise errors.subscription_throttled(self.backend.subscription, f"{route.method} {route.op}",
                                                self.dice.wait_s(f"arm:{kind}", limit))
        return {header: str(int(self.dice.tokens(f"arm:{kind}", limit)))}

    @staticmethod
    def _parse(request: Request) -> Any:
        if request.method not in ("PUT", "PATCH") and not request.body:
            return None
        try:
            return json.loads(request.body or b"null")
        except ValueError as exc:
            raise errors.invalid_request_content(f"Unexpected character encountered while parsing value: {exc}") \
                from None


def _base_url(headers: Mapping[str, str]) -> str:
    return f"http://{headers.get('Host') or '127.0.0.1'}"

