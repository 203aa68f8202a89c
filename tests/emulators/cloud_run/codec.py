"""JSON on the wire <-> ``run_v2`` protobuf messages, the way Google's REST front end does it.

Requests are parsed into the request's message type with unknown fields
rejected; both enum encodings (names and numbers) are accepted, as
``json_format`` does. Responses are assembled as dicts by the backend,
parsed into their output message (the kit's checker: a field the message
does not have, or a wrong type, is an emulator bug) and printed from the
message, so what leaves is exactly what the proto allows: camelCase, int64 as
strings, default values omitted, enums as names unless the request's
``$alt`` asked for ``enum-encoding=int`` (what the GAPIC REST transport sends).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from google.cloud import run_v2
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from ..kit import Issue, Request
from ..kit.validation import CONSTRAINT, TYPE
from .errors import GoogleError, invalid_argument

_UNKNOWN = re.compile(r'has no field named "(?P<name>[^"]+)" at "(?P<path>[^"]+)"')

JOB = run_v2.Job.pb()
EXECUTION = run_v2.Execution.pb()
TASK = run_v2.Task.pb()
OPERATION = operations_pb2.Operation
TYPE_URL = {JOB: "type.googleapis.com/google.cloud.run.v2.Job",
            EXECUTION: "type.googleapis.com/google.cloud.run.v2.Execution"}


def parse_message(raw: bytes, message_type: type[Message], field: str | None) -> Message:
    """The request body as ``message_type``; ``field`` is the request field the body binds to (``job``)."""
    try:
        payload = json.loads(raw or b"{}")
    except ValueError as exc:
        raise invalid_argument(f"Invalid JSON payload received. {exc}.") from None
    if not isinstance(payload, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    message = message_type()
    try:
        json_format.ParseDict(payload, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise _payload_error(str(exc), field) from None
    return message


def _payload_error(text: str, field: str | None) -> GoogleError:
    """Word a parse failure as ESF does: ``Invalid JSON payload received. Unknown name "x" at 'job.template'``."""
    unknown = _UNKNOWN.search(text)
    if unknown:
        path = _request_path(unknown["path"], field)
        where = f" at '{path}'" if path else ""
        message = f'Invalid JSON payload received. Unknown name "{unknown["name"]}"{where}: Cannot find field.'
        return invalid_argument(message, [(path or unknown["name"], message)])
    detail = text.split("\n")[0].rstrip(".")
    return invalid_argument(f"Invalid JSON payload received. {detail}.", [(field or "body", detail)])


def _request_path(proto_path: str, field: str | None) -> str:
    """``Job.template.template`` -> ``job.template.template`` (body bound to ``job``); ``RunJobRequest`` -> ``""``."""
    rest = proto_path.split(".", 1)[1] if "." in proto_path else ""
    return ".".join(p for p in (field, rest) if p)


def to_dict(message: Message) -> dict[str, Any]:
    """A parsed message back to JSON with enum names (how the backend stores templates)."""
    return json_format.MessageToDict(message)


def find_issues(schema: type[Message], value: dict[str, Any]) -> list[Issue]:
    """The kit's checker: every way ``value`` fails to parse as ``schema`` (unknown fields included)."""
    try:
        json_format.ParseDict(value, schema(), ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        kind = CONSTRAINT if "no field named" in str(exc) else TYPE
        return [Issue(kind, schema.DESCRIPTOR.full_name, str(exc).split("\n")[0])]
    except (TypeError, ValueError, AttributeError) as exc:
        return [Issue(TYPE, schema.DESCRIPTOR.full_name, f"{type(exc).__name__}: {exc}")]
    return []


def encode(schema: type[Message], value: dict[str, Any], int_enums: bool) -> dict[str, Any]:
    """What the front end prints for ``value`` (already checked by ``find_issues``)."""
    message = schema()
    json_format.ParseDict(value, message)
    return json_format.MessageToDict(message, use_integers_for_enums=int_enums)


def wants_int_enums(request: Request) -> bool:
    """``$alt=json;enum-encoding=int`` (the GAPIC REST transport) asks for enum numbers."""
    return "enum-encoding=int" in (request.arg("$alt") or "")


def packed(schema: type[Message], value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as a ``google.protobuf.Any`` in JSON (Operation metadata and response)."""
    return {"@type": TYPE_URL[schema], **value}


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def duration_s(text: str) -> float:
    """``"600s"`` / ``"1.5s"`` -> seconds (the JSON form of google.protobuf.Duration)."""
    return float(text.rstrip("s"))


def go_duration(seconds: float) -> str:
    """How Cloud Run words elapsed time in condition messages: ``56.03s``, ``1m3.6s``, ``2m29.63s``."""
    minutes, rest = divmod(max(seconds, 0.0), 60)
    text = f"{rest:.2f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text
