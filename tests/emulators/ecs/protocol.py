"""AWS JSON 1.1 request handling, independent of the HTTP server.

Order of checks, as on AWS: SigV4 ``Authorization`` present and scoped to
our region and the target's service; known ``X-Amz-Target`` (whose IAM
action, ``ecs:RunTask``, goes into the call log's permissions); then the
fault knobs; then the body against botocore's input shape; then the operation.
Every response body is checked against the output shape before it leaves,
so the emulator cannot answer something AWS never would.
"""

from __future__ import annotations

import json
import re
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import ServiceModel

from ..kit import CallLog, FaultDice, Request, Response, ResponseGuard, WireErrors
from ..kit.validation import TYPE
from .backend import Backend
from .errors import AwsError, server_error, throttled
from .handlers import ECS_HANDLERS, LOGS_HANDLERS, Handler
from .taskdefs import TaskDefinitionStore
from .util import mutates
from .validation import find_issues, validation_message

JSON_WIRE = WireErrors(throttle=throttled, server_error=server_error)
ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
LOGS_TARGET_PREFIX = "Logs_20140328"
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)/aws4_request")


@dataclass(frozen=True)
class Service:
    signing_name: str
    model: ServiceModel
    handlers: dict[str, Handler]
    validation_code: str  # what this service calls a failed constraint


@lru_cache(maxsize=1)  # loading the models takes a while; they are read-only
def _load_services() -> dict[str, Service]:
    session = botocore.session.get_session()
    invalid = "InvalidParameterException"  # both services' name for a failed constraint
    return {
        ECS_TARGET_PREFIX: Service("ecs", session.get_service_model("ecs"), ECS_HANDLERS, invalid),
        LOGS_TARGET_PREFIX: Service("logs", session.get_service_model("logs"), LOGS_HANDLERS, invalid),
    }


class JsonProtocol:
    """ECS and Logs on one endpoint, told apart by the ``X-Amz-Target`` prefix."""

    def __init__(self, backend: Backend, dice: FaultDice, calls: CallLog, errors: list[str],
                 validate_responses: bool = True):
        self._backend = backend
        self._dice = dice
        self._calls = calls
        self._errors = errors
        self._guard = ResponseGuard(find_issues, errors, enabled=validate_responses, describe=validation_message)
        self._services = _load_services()

    def handle(self, request: Request) -> Response:
        prefix, _, op = (request.headers.get("X-Amz-Target") or "").partition(".")
        if op:
            self._calls.record(op)  # every request, faulted or not
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        try:
            result = self._handle(request, self._services.get(prefix), op)
        except AwsError as exc:
            return exc.response(headers)
        except Exception:  # a bug in the emulator: make it loud, not a silent 500
            self._errors.append(f"{op}: {traceback.format_exc()}")
            return server_error(f"Emulator internal error in {op}").response(headers)
        return Response.json(200, result, AwsError.content_type, headers)

    def _handle(self, request: Request, service: Service | None, op: str) -> dict[str, Any]:
        if request.method != "POST" or request.path != "/":
            raise AwsError("UnknownOperationException", f"{request.method} {request.target} is not an operation",
                           404)
        self._check_auth(request.headers, service)
        if service is None or op not in service.model.operation_names:
            raise AwsError("UnknownOperationException", f"Unknown operation: {request.headers.get('X-Amz-Target')}")
        self._calls.record_permission(f"{service.signing_name}:{op}")  # the IAM action AWS would authorize
        self._dice.before_call(op, JSON_WIRE)
        params = self._parse(request.body)
        operation = service.model.operation_model(op)
        self._validate(operation.input_shape, params, service)
        handler = service.handlers.get(op)
        if handler is None:
            raise AwsError("UnsupportedOperation", f"The ECS emulator does not implement {op}.")
        with self._backend.lock:
            implied = implied_permissions(op, params, self._backend.taskdefs)
        if implied:
            self._calls.record_permission(*implied)
        with self._backend.lock:
            self._backend.tick()
            result = handler(self._backend, params)
        self._dice.after_call(op, JSON_WIRE, mutating=mutates(op))
        if self._guard.broken(op, operation.output_shape, result):
            raise AwsError("EmulatorInvalidResponse", f"{op} response breaks its output shape", 500)
        return result

    def _check_auth(self, headers: Mapping[str, str], service: Service | None) -> None:
        auth = headers.get("Authorization")
        if not auth:
            raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _CREDENTIAL.search(auth)
        if not auth.startswith("AWS4-HMAC-SHA256 ") or not match or "Signature=" not in auth:
            raise AwsError("IncompleteSignatureException",
                           "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
                           "parameters (AWS4-HMAC-SHA256).")
        if not (headers.get("X-Amz-Date") or headers.get("Date")):
            raise AwsError("IncompleteSignatureException", "Authorization header requires existence of either "
                           "a 'X-Amz-Date' or a 'Date' header.")
        if match["region"] != self._backend.region:
            raise AwsError("InvalidSignatureException", "Credential should be scoped to a valid region.")
        if service is not None and match["service"] != service.signing_name:
            raise AwsError("InvalidSignatureException",
                           f"Credential should be scoped to correct service: '{service.signing_name}'.")

    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any]:
        try:
            params = json.loads(raw or b"{}")
        except ValueError:
            raise AwsError("SerializationException", "Request body is not valid JSON") from None
        if not isinstance(params, dict):
            raise AwsError("SerializationException", "Request body must be a JSON object")
        return params

    @staticmethod
    def _validate(shape, params: dict[str, Any], service: Service) -> None:
        issues = find_issues(shape, params)
        wrong_types = [i for i in issues if i.kind == TYPE]
        if wrong_types:
            raise AwsError("SerializationException", "; ".join(i.message for i in wrong_types))
        if issues:
            raise AwsError(service.validation_code, validation_message(issues))


TAG_ON_CREATE = frozenset({"RunTask", "StartTask", "RegisterTaskDefinition", "CreateCluster", "CreateService"})


def implied_permissions(op: str, params: dict[str, Any], taskdefs: TaskDefinitionStore) -> tuple[str, ...]:
    """What IAM also authorizes on this call besides ``ecs:<op>``: tag-on-create needs
    ``ecs:TagResource``; handing a task role or execution role to ECS needs ``iam:PassRole``,
    checked on registration and again on RunTask, for the task definition's roles and the
    overrides' (a role the caller may not pass is refused, AccessDenied)."""
    implied = []
    if op in TAG_ON_CREATE and params.get("tags"):
        implied.append("ecs:TagResource")
    roles = []
    if op == "RegisterTaskDefinition":
        roles = [params.get("taskRoleArn"), params.get("executionRoleArn")]
    elif op in ("RunTask", "StartTask"):
        overrides = params.get("overrides") or {}
        try:
            definition = taskdefs.lookup(str(params.get("taskDefinition", "")))
        except AwsError:  # a malformed reference: the handler answers it
            definition = None
        body = definition.body if definition is not None else {}
        roles = [overrides.get("taskRoleArn"), overrides.get("executionRoleArn"), body.get("taskRoleArn"),
                 body.get("executionRoleArn")]
    if any(roles):
        implied.append("iam:PassRole")
    return tuple(implied)

