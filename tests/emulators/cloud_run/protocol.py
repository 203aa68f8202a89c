"""Cloud Run Admin API v2 over REST/JSON, independent of the HTTP server.

Order of work, as at Google's front end: route (unknown paths 404); count
the call; authenticate; record the IAM permission and check it; the fault
knobs (latency, then 429 / 503 without doing anything); the query string
and the body against the request message (unknown fields 400); the
service's own checks and the operation, under the backend lock; a
carried-out call may still be answered 503 (accept-then-fail); the answer is
checked against its output message (an emulator bug goes to ``errors`` and
the client gets 500) and printed with the enum encoding the client asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from ..kit import CallLog, Request, Response, ResponseGuard, WireErrors, poll_until, summary
from . import codec
from .auth import TOKEN_PATH, Auth, TokenEndpoint
from .backend import Backend
from .errors import (GoogleError, internal, invalid_argument, no_such_method, quota_exceeded, throttled, unavailable,
                     unimplemented)
from .faults import CloudRunFaultDice
from .realistic import QUOTA_LIMITS
from .routes import SYSTEM_PARAMS, Route, match, resource_names

WIRE = WireErrors(throttle=throttled, server_error=unavailable, accept_then_fail=unavailable)
MAX_WAIT_S = 30.0
Handler = Callable[[Backend, dict[str, str], Request, dict[str, Any]], dict[str, Any]]


def _query_int(request: Request, name: str) -> int:
    value = request.arg(name) or "0"
    try:
        return int(value)
    except ValueError:
        raise invalid_argument(f'Invalid value at \'{name}\' (TYPE_INT32), "{value}"', [(name, "not an integer")]
                               ) from None


def _flag(request: Request, name: str) -> bool:
    return (request.arg(name) or "").lower() == "true"


HANDLERS: dict[str, Handler] = {
    "CreateJob": lambda b, n, r, body: b.create_job(n["location"], r.arg("jobId") or "", body,
                                                    _flag(r, "validateOnly")),
    "GetJob": lambda b, n, r, body: b.get_job(n["job"]),
    "ListJobs": lambda b, n, r, body: b.list_jobs(n["location"], _query_int(r, "pageSize"), r.arg("pageToken") or ""),
    "DeleteJob": lambda b, n, r, body: b.delete_job(n["job"], n["location"], r.arg("etag")),
    "RunJob": lambda b, n, r, body: b.run_job(n["job"], n["location"], body),
    "GetExecution": lambda b, n, r, body: b.get_execution(n["execution"]),
    "ListExecutions": lambda b, n, r, body: b.list_executions(n["job"], _query_int(r, "pageSize"),
                                                              r.arg("pageToken") or ""),
    "CancelExecution": lambda b, n, r, body: b.cancel_execution(n["execution"], n["location"],
                                                                bool(body.get("validateOnly"))),
    "DeleteExecution": lambda b, n, r, body: b.delete_execution(n["execution"], n["location"]),
    "GetTask": lambda b, n, r, body: b.get_task(n["task"]),
    "ListTasks": lambda b, n, r, body: b.list_tasks(n["execution"], _query_int(r, "pageSize"),
                                                    r.arg("pageToken") or ""),
    "GetOperation": lambda b, n, r, body: b.get_operation(n["operation"]),
}


class RestProtocol:
    def __init__(self, backend: Backend, dice: CloudRunFaultDice, calls: CallLog, errors: list[str], auth: Auth,
                 tokens: TokenEndpoint, validate_responses: bool = True):
        self.backend, self.dice, self.calls, self.auth, self.tokens = backend, dice, calls, auth, tokens
        self.guard = ResponseGuard(codec.find_issues, errors, enabled=validate_responses, describe=summary)
        project = backend.project_number
        self.wire = WireErrors(
            throttle=throttled, server_error=unavailable, accept_then_fail=unavailable,
            rate_limited=lambda quota: quota_exceeded(quota, QUOTA_LIMITS.get(quota, quota), project))
        """A named quota's bucket (realistic mode's read/write quotas) answers Google's quota error."""

    def handle(self, request: Request) -> Response:
        if request.method == "POST" and request.path == TOKEN_PATH:
            self.calls.record("OAuthToken")
            return self.tokens.answer()
        found = match(request.method, request.path)
        if found is None:
            return no_such_method(request.method, request.path).response()
        route, ids = found
        self.calls.record(route.op)  # every request, faulted or not
        try:
            return self._serve(request, route, resource_names(ids))
        except GoogleError as exc:
            return exc.response()

    def _serve(self, request: Request, route: Route, names: dict[str, str]) -> Response:
        self.auth.check_caller(request.headers)
        resource = names.get("job", names["location"])
        self._permit(route.permission, resource)
        if route.response is None:
            raise unimplemented(route.op)
        self.dice.before_call(route.op, self.wire)  # latency, then 429 / 503: not carried out
        self._check_query(request, route)
        body = self._body(request, route)
        if route.op == "RunJob" and body.get("overrides"):
            self._permit("run.jobs.runWithOverrides", resource)  # what IAM checks when overrides are given
        result = self._dispatch(route, names, request, body)
        self.dice.after_call(route.op, self.wire, mutating=route.mutating)  # carried out, then maybe 503
        return self._answer(route.op, route.response, result, codec.wants_int_enums(request))

    def _permit(self, permission: str | None, resource: str) -> None:
        if permission is not None:
            self.calls.record_permission(permission)
            self.auth.check_permission(permission, resource)

    @staticmethod
    def _check_query(request: Request, route: Route) -> None:
        for name in request.query_params:
            if name not in route.query and name not in SYSTEM_PARAMS:
                message = (f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
                           f"Field '{name}' could not be found in request message.")
                raise invalid_argument(message, [(name, message)])

    @staticmethod
    def _body(request: Request, route: Route) -> dict[str, Any]:
        if route.request is None:
            return {}
        return codec.to_dict(codec.parse_message(request.body, route.request, route.body_field))

    def _dispatch(self, route: Route, names: dict[str, str], request: Request, body: dict[str, Any]) -> dict:
        if route.op == "WaitOperation":
            return self._wait(names["operation"], body.get("timeout"))
        with self.backend.lock:
            self.backend.tick()
            return HANDLERS[route.op](self.backend, names, request, body)

    def _wait(self, name: str, timeout: str | None) -> dict[str, Any]:
        """Block (without the lock) until the operation is done or ``timeout`` passes."""
        seen: list[dict[str, Any]] = []

        def probe() -> dict[str, Any] | None:
            with self.backend.lock:
                self.backend.tick()
                seen.append(self.backend.get_operation(name))
            return seen[-1] if seen[-1].get("done") else None

        return poll_until(probe, min(codec.duration_s(timeout) if timeout else MAX_WAIT_S, MAX_WAIT_S)) or seen[-1]

    def _answer(self, op: str, schema: type[Message], result: dict[str, Any], int_enums: bool) -> Response:
        if self.guard.broken(op, schema, result):
            raise internal(f"Emulator bug: the {op} response breaks its output message.")
        return Response.json(200, codec.encode(schema, result, int_enums), "application/json; charset=UTF-8")
