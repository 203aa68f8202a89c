"""The kit every cloud emulator is assembled from (see README.md).

- ``http``: ``Request``, ``Response``, the ``WireProtocol`` interface, ``HttpServer``, ``bearer_token``
- ``routing``: ``match_route`` over a REST cloud's table of method + path-pattern routes
- ``errors``: ``CloudError``, the base of each cloud's error (status, code, message, headers; ``response()``)
- ``faults``: shared ``Faults`` knobs, ``FaultDice``, ``WireErrors``, ``RateLimit``
- ``calls``: ``CallLog`` (calls per operation, permissions used)
- ``validation``: ``Issue``, the ``Checker`` signature, ``ResponseGuard``
- ``emulator``: ``Emulator``, the base class with the test-facing knobs; ``poll_until``
- ``processes``: execute mode: ``ProcessRunner``, ``container_environment``, ``StartFailure``, ``exit_code_of``
- ``realism``: realistic mode: ``Realism`` (the switch), ``Profile`` (a cloud's rates, knobs, phase times)
- ``runs``: simulated mode: ``RunDefaults`` (run length and exit code, overridable from a container's env)
"""

from .calls import CallLog
from .emulator import Emulator, poll_until
from .errors import CloudError
from .faults import (
    ACCEPT_THEN_FAIL,
    LOST_RESPONSE,
    SERVER_ERROR,
    THROTTLE,
    FaultDice,
    Faults,
    RateLimit,
    WireErrors,
)
from .http import HttpServer, Request, Response, WireProtocol, bearer_token
from .processes import ProcessRunner, StartFailure, container_environment, exit_code_of
from .realism import Profile, Realism, per_minute
from .realism import resolve as resolve_realism
from .routing import RouteMatch, match_route
from .runs import RunDefaults
from .validation import CONSTRAINT, TYPE, Checker, Issue, ResponseGuard, summary

__all__ = [
    "ACCEPT_THEN_FAIL", "CONSTRAINT", "LOST_RESPONSE", "SERVER_ERROR", "THROTTLE", "TYPE",
    "CallLog", "Checker", "CloudError", "Emulator", "FaultDice", "Faults", "HttpServer", "Issue", "ProcessRunner",
    "Profile", "RateLimit", "Realism", "Request", "Response", "ResponseGuard", "RouteMatch", "RunDefaults",
    "StartFailure", "WireErrors", "WireProtocol", "bearer_token", "container_environment", "exit_code_of",
    "match_route", "per_minute", "poll_until", "resolve_realism", "summary",
]
