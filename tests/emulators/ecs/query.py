"""AWS query protocol, EC2 dialect: form-encoded requests in, XML out.

botocore's EC2 serializer flattens the input shape into form fields: a
structure member goes by its ``queryName`` or capitalised ``locationName``
(``Filters`` → ``Filter``), list items by 1-based index (``Filter.1.Value.1``),
booleans as ``true``/``false``, timestamps as ISO 8601. We parse the fields
back into the shape, the way EC2's front end does: a name the model does not
know is ``UnknownParameter``, a value of the wrong type
``InvalidParameterValue``; then the shape checker shared with the JSON
protocol runs (a missing required member is ``MissingParameter``, a
min/max/enum miss ``InvalidParameterValue``).

Order of checks: SigV4 ``Authorization`` scoped to our region and ``ec2``;
``Action`` and ``Version``; fault knobs (throttling is
``RequestLimitExceeded`` with HTTP 503, a 5xx is ``InternalError``); the
parameters; the operation. A response is ``<{Action}Response xmlns=...>``
with ``requestId`` and members named by ``locationName``, list items as
``<item>``, checked against the output shape before it leaves. Errors are
``<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/>``.
"""

from __future__ import annotations

import re
import traceback
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import botocore.session
from botocore.model import ServiceModel, Shape

from ..kit import CallLog, FaultDice, Request, Response, ResponseGuard, WireErrors
from .ec2 import EC2_HANDLERS, Ec2
from .errors import AwsError
from .protocol import _CREDENTIAL
from .util import mutates
from .validation import find_issues

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
XML_CONTENT_TYPE = "text/xml;charset=UTF-8"
QUERY_WIRE = WireErrors(
    throttle=lambda: AwsError("RequestLimitExceeded", "Request limit exceeded.", 503),
    server_error=lambda: AwsError("InternalError", "An internal error has occurred", 500),
)


@lru_cache(maxsize=1)
def _ec2_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("ec2")


def is_query_request(request: Request) -> bool:
    """A query-protocol call: no ``X-Amz-Target``, and a form body (or ``?Action=`` on a GET)."""
    if request.headers.get("X-Amz-Target"):
        return False
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return content_type == FORM_CONTENT_TYPE or (request.method == "GET" and "Action=" in request.query)


# -- form fields → shape ---------------------------------------------------------------------

def _invalid(value: Any, wire: str, expected: str) -> AwsError:
    message = f"Value ({value}) for parameter {wire} is invalid. Expected: '{expected}'."
    return AwsError("InvalidParameterValue", message)


def _tree(fields: dict[str, str]) -> dict[str, Any]:
    """``{"Filter.1.Name": "x"}`` → ``{"Filter": {"1": {"Name": "x"}}}``."""
    root: dict[str, Any] = {}
    for key, value in fields.items():
        node, parts = root, key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            existing = node.get(part)
            if (existing is not None) and (isinstance(existing, dict) == last):
                raise AwsError("InvalidParameterValue", f"Parameter {'.'.join(parts[:i + 1])} is given both as a "
                                                        "value and as a list or structure")
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return root


def _wire_names(shape: Shape) -> dict[str, str]:
    """Wire name → member name, spelled as botocore's EC2 serializer spells it."""
    names: dict[str, str] = {}
    for member, member_shape in shape.members.items():
        ser, location = member_shape.serialization, member_shape.serialization.get("name")
        names[ser.get("queryName") or (location[0].upper() + location[1:] if location else member)] = member
    return names


def _scalar(shape: Shape, value: str, wire: str) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long"):
        if not re.fullmatch(r"[+-]?\d+", value):
            raise _invalid(value, wire, "Integer")
        return int(value)
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise _invalid(value, wire, "Boolean")
        return value.lower() == "true"
    if kind in ("float", "double"):
        try:
            return float(value)
        except ValueError:
            raise _invalid(value, wire, "Double") from None
    if kind == "timestamp":
        try:
            if re.fullmatch(r"\d+(\.\d+)?", value):
                return float(value)
            moment = datetime.fromisoformat(value)
            return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
        except ValueError:
            raise _invalid(value, wire, "ISO 8601 timestamp") from None
    return value  # string, blob (base64 text)


def decode(shape: Shape, node: Any, wire: str = "") -> Any:
    """The value of ``shape`` that the (tree of) form fields ``node`` spells."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(node, dict):
            raise _invalid(node, wire, shape.name)
        names, out = _wire_names(shape), {}
        for key, sub in node.items():
            member, path = names.get(key), f"{wire}.{key}" if wire else key
            if member is None:
                raise AwsError("UnknownParameter", f"The parameter {path} is not recognized")
            out[member] = decode(shape.members[member], sub, path)
        return out
    if kind == "list":
        if node == "":
            return []  # the query protocol's empty list
        if not isinstance(node, dict) or not all(k.isdigit() and int(k) >= 1 for k in node):
            raise _invalid(node if isinstance(node, str) else "...", wire, f"list of {shape.member.type_name}")
        return [decode(shape.member, node[k], f"{wire}.{k}") for k in sorted(node, key=int)]
    if kind == "map":
        raise AwsError("InvalidParameterValue", f"Emulator: map parameter {wire} is not supported")
    if isinstance(node, dict):
        raise AwsError("UnknownParameter", f"The parameter {wire}.{next(iter(node))} is not recognized")
    return _scalar(shape, node, wire)


# -- shape → XML --------------------------------------------------------------------------------

def _text(shape: Shape, value: Any) -> str:
    if shape.type_name == "boolean":
        return "true" if value else "false"
    if shape.type_name == "timestamp":
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return escape(str(value))


def _members(shape: Shape, value: dict[str, Any]) -> str:
    return "".join(encode(m, value[k], m.serialization.get("name", k))
                   for k, m in shape.members.items() if value.get(k) is not None)


def encode(shape: Shape, value: Any, name: str) -> str:
    """``value`` as the XML element ``name`` (members and items named as botocore's parser expects)."""
    kind = shape.type_name
    if kind == "structure":
        inner = _members(shape, value)
    elif kind == "list":
        item = shape.member.serialization.get("name")
        if shape.serialization.get("flattened"):
            return "".join(encode(shape.member, v, item or name) for v in value)
        inner = "".join(encode(shape.member, v, item or "member") for v in value)
    elif kind == "map":
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        inner = "".join(f"<entry>{encode(shape.key, k, key_name)}{encode(shape.value, v, value_name)}</entry>"
                        for k, v in value.items())
    else:
        inner = _text(shape, value)
    return f"<{name}>{inner}</{name}>"


def response_xml(op: str, shape: Shape | None, result: dict[str, Any], request_id: str, xmlns: str) -> bytes:
    members = _members(shape, result) if shape is not None else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{op}Response xmlns="{xmlns}">'
            f"<requestId>{request_id}</requestId>{members}</{op}Response>").encode()


def error_xml(code: str, message: str, request_id: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ).encode()


# -- the request pipeline -----------------------------------------------------------------------

class QueryProtocol:
    """Serves EC2's query API from ``Ec2`` state; same fault dice, call counter and error list as ECS."""

    def __init__(self, ec2: Ec2, region: str, dice: FaultDice, calls: CallLog, errors: list[str],
                 validate_responses: bool = True):
        self._ec2, self._region, self._dice = ec2, region, dice
        self._calls, self._errors = calls, errors
        self._guard = ResponseGuard(find_issues, errors, enabled=validate_responses)
        self._model = _ec2_model()

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        query = request.query if request.method == "GET" else request.body.decode("utf-8", "replace")
        fields = dict(parse_qsl(query, keep_blank_values=True))
        op = fields.pop("Action", "")
        if op:
            self._calls.record(op)  # every request, faulted or not
        try:
            status, body = 200, self._handle(request, fields, op, request_id)
        except AwsError as exc:
            status, body = exc.status, error_xml(exc.code, exc.message, request_id)
        except Exception:  # a bug in the emulator: make it loud, not a silent 500
            self._errors.append(f"{op}: {traceback.format_exc()}")
            status, body = 500, error_xml("InternalError", f"Emulator internal error in {op}", request_id)
        return Response(status, body, {"Content-Type": XML_CONTENT_TYPE, "x-amzn-RequestId": request_id})

    def _handle(self, request: Request, fields: dict[str, str], op: str, request_id: str) -> bytes:
        if request.method not in ("GET", "POST") or request.path != "/":
            raise AwsError("InvalidAction", f"{request.method} {request.target} is not an operation")
        self._check_auth(request.headers)
        self._check_action(op, fields.pop("Version", None))
        self._calls.record_permission(f"ec2:{op}")  # the IAM action AWS would authorize
        self._dice.before_call(op, QUERY_WIRE)
        operation = self._model.operation_model(op)
        params = decode(operation.input_shape, _tree(fields)) if operation.input_shape is not None else {}
        self._validate(operation.input_shape, params)
        handler = EC2_HANDLERS.get(op)
        if handler is None:
            raise AwsError("UnsupportedOperation", f"The EC2 emulator does not implement {op}.")
        with self._ec2.lock:
            result = handler(self._ec2, params)
        self._dice.after_call(op, QUERY_WIRE, mutating=mutates(op))
        if self._guard.broken(op, operation.output_shape, result):
            raise AwsError("InternalError", f"Emulator: {op} response breaks its output shape", 500)
        xmlns = self._model.metadata["xmlNamespace"].rstrip("/") + "/"
        return response_xml(op, operation.output_shape, result, request_id, xmlns)

    def _check_action(self, op: str, version: str | None) -> None:
        if not op:
            raise AwsError("MissingAction", "The request must contain the parameter Action")
        if op not in self._model.operation_names:
            raise AwsError("InvalidAction", f"The action {op} is not valid for this web service.")
        if version is None:
            raise AwsError("MissingParameter", "The request must contain the parameter Version")
        if version != self._model.metadata["apiVersion"]:
            raise AwsError("NoSuchVersion", f"The requested version ({version}) of service AmazonEC2 does not exist")

    def _check_auth(self, headers: Mapping[str, str]) -> None:
        auth = headers.get("Authorization")
        if not auth:
            raise AwsError("MissingAuthenticationToken", "The request must contain either a valid (registered) AWS "
                                                         "access key ID or X.509 certificate.", 401)
        match = _CREDENTIAL.search(auth)
        if not auth.startswith("AWS4-HMAC-SHA256 ") or not match or "Signature=" not in auth:
            raise AwsError("IncompleteSignature", "Authorization header requires 'Credential', 'Signature' and "
                                                  "'SignedHeaders' parameters (AWS4-HMAC-SHA256).")
        if not (headers.get("X-Amz-Date") or headers.get("Date")):
            raise AwsError("IncompleteSignature", "Authorization header requires existence of either a "
                                                  "'X-Amz-Date' or a 'Date' header.")
        if match["region"] != self._region:
            raise AwsError("AuthFailure", "Credential should be scoped to a valid region.", 401)
        if match["service"] != "ec2":
            raise AwsError("AuthFailure", "Credential should be scoped to correct service: 'ec2'.", 401)

    @staticmethod
    def _validate(shape: Shape | None, params: dict[str, Any]) -> None:
        for issue in find_issues(shape, params):
            if issue.message.endswith("Member must not be null"):
                raise AwsError("MissingParameter", f"The request must contain the parameter {issue.path}")
            raise AwsError("InvalidParameterValue", issue.message)
