"""In-memory CloudWatch Logs: what the awslogs driver writes, what GetLogEvents reads.

GetLogEvents tokens follow the real shape (``f/<56 digits>``, ``b/<56 digits>``)
and the real contract: reading forward past the end returns no events and the
same ``nextForwardToken``, which is how clients know to stop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .errors import AwsError, invalid_parameter


@dataclass(frozen=True)
class LogEvent:
    timestamp: int  # epoch milliseconds, as CloudWatch Logs stores them
    message: str
    ingestion_time: int

    def to_api(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "message": self.message, "ingestionTime": self.ingestion_time}


def _not_found(what: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"The specified log {what} does not exist.")


def _token(direction: str, index: int) -> str:
    return f"{direction}/{index:056d}"


def _parse_token(token: str) -> tuple[str, int]:
    direction, _, digits = token.partition("/")
    if direction not in ("f", "b") or not digits.isdigit():
        raise invalid_parameter("The specified nextToken is invalid.")
    return direction, int(digits)


class LogStore:
    """Log groups → streams → events; safe to write from executor threads."""

    def __init__(self, region: str, account: str):
        self._arn_prefix = f"arn:aws:logs:{region}:{account}:log-group:"
        self._lock = threading.Lock()
        self._groups: dict[str, dict[str, list[LogEvent]]] = {}

    def create_group(self, name: str) -> None:
        with self._lock:
            if name in self._groups:
                raise AwsError("ResourceAlreadyExistsException", "The specified log group already exists")
            self._groups[name] = {}

    def has_group(self, name: str) -> bool:
        with self._lock:
            return name in self._groups

    def ensure_stream(self, group: str, stream: str, create_group: bool) -> bool:
        """Create the stream as the awslogs driver does; False if the group is missing."""
        with self._lock:
            if group not in self._groups:
                if not create_group:
                    return False
                self._groups[group] = {}
            self._groups[group].setdefault(stream, [])
            return True

    def put(self, group: str, stream: str, message: str, at_ms: int) -> None:
        with self._lock:
            events = self._groups.setdefault(group, {}).setdefault(stream, [])
            events.append(LogEvent(at_ms, message, at_ms))

    def messages(self, group: str, stream: str) -> list[str]:
        with self._lock:
            return [e.message for e in self._groups.get(group, {}).get(stream, [])]

    def _group_name(self, params: dict[str, Any]) -> str:
        name, ident = params.get("logGroupName"), params.get("logGroupIdentifier")
        if name and ident:
            raise invalid_parameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        if not (name or ident):
            raise invalid_parameter("Either logGroupName or logGroupIdentifier must be specified.")
        if ident and ident.startswith("arn:"):
            if not ident.startswith(self._arn_prefix):
                raise _not_found("group")
            ident = ident[len(self._arn_prefix):].removesuffix(":*")
        return name or ident

    def get_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group_name(params)
        with self._lock:
            if group not in self._groups:
                raise _not_found("group")
            stream = self._groups[group].get(params["logStreamName"])
            if stream is None:
                raise _not_found("stream")
            events = list(stream)
        start, end = params.get("startTime"), params.get("endTime")
        events = [e for e in events
                  if (start is None or e.timestamp >= start) and (end is None or e.timestamp < end)]
        first, last = self._window(len(events), params)
        return {
            "events": [e.to_api() for e in events[first:last]],
            "nextForwardToken": _token("f", last),
            "nextBackwardToken": _token("b", first),
        }

    @staticmethod
    def _window(total: int, params: dict[str, Any]) -> tuple[int, int]:
        """[first, last) indexes to return, honouring token, direction and limit."""
        limit = params.get("limit") or 10000
        token = params.get("nextToken")
        if token:
            direction, index = _parse_token(token)
            index = min(index, total)
            if direction == "f":
                return index, min(total, index + limit)
            return max(0, index - limit), index
        if params.get("startFromHead"):
            return 0, min(total, limit)
        return max(0, total - limit), total
