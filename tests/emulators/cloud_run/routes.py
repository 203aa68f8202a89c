"""The Admin API v2 surface: HTTP method and path -> operation, IAM permission, request and response types.

Paths and bodies are those of the ``google.api.http`` rules the GAPIC REST
transport and the discovery document share (``/v2/{parent=projects/*/
locations/*}/jobs`` and so on). Query parameters are camelCase, as both
clients send them; any other parameter is refused, as Google's front end does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.cloud import run_v2
from google.longrunning import operations_pb2
from google.protobuf.message import Message

from ..kit import match_route
from .codec import EXECUTION, JOB, OPERATION, TASK

_LOC = r"projects/(?P<project>[^/:]+)/locations/(?P<location>[^/:]+)"
_JOB = _LOC + r"/jobs/(?P<job>[^/:]+)"
_EXECUTION = _JOB + r"/executions/(?P<execution>[^/:]+)"
PAGING = frozenset({"pageSize", "pageToken", "showDeleted"})
SYSTEM_PARAMS = frozenset({"$alt", "alt", "prettyPrint", "$prettyPrint", "key", "fields", "$fields", "quotaUser",
                           "access_token", "oauth_token", "callback", "upload_protocol", "uploadType", "$.xgafv",
                           "$callback"})
READ_ONLY_POSTS = frozenset({"WaitOperation", "TestIamPermissions"})


@dataclass(frozen=True)
class Route:
    op: str
    method: str
    pattern: re.Pattern[str]
    permission: str | None
    response: type[Message] | None
    """None: the emulator knows the RPC but does not implement it (501)."""
    request: type[Message] | None = None
    body_field: str | None = None
    """The request field the body binds to (``job``); None when the body is the whole request (``*``)."""
    query: frozenset[str] = frozenset()

    @property
    def mutating(self) -> bool:
        """Whether accept-then-fail may hit it: POST/DELETE/PATCH that change state (not ``:wait``)."""
        return self.method != "GET" and self.op not in READ_ONLY_POSTS


def _route(op: str, method: str, path: str, permission: str | None, response: type[Message] | None,
           **extra) -> Route:
    return Route(op, method, re.compile(f"^/v2/{path}$"), permission, response, **extra)


ROUTES = [
    _route("CreateJob", "POST", _LOC + "/jobs", "run.jobs.create", OPERATION, request=JOB, body_field="job",
           query=frozenset({"jobId", "validateOnly"})),
    _route("ListJobs", "GET", _LOC + "/jobs", "run.jobs.list", run_v2.ListJobsResponse.pb(), query=PAGING),
    _route("GetJob", "GET", _JOB, "run.jobs.get", JOB),
    _route("DeleteJob", "DELETE", _JOB, "run.jobs.delete", OPERATION, query=frozenset({"validateOnly", "etag"})),
    _route("RunJob", "POST", _JOB + ":run", "run.jobs.run", OPERATION, request=run_v2.RunJobRequest.pb()),
    _route("UpdateJob", "PATCH", _JOB, "run.jobs.update", None),
    _route("GetIamPolicy", "GET", _JOB + ":getIamPolicy", "run.jobs.getIamPolicy", None),
    _route("SetIamPolicy", "POST", _JOB + ":setIamPolicy", "run.jobs.setIamPolicy", None),
    _route("TestIamPermissions", "POST", _JOB + ":testIamPermissions", None, None),
    _route("ListExecutions", "GET", _JOB + "/executions", "run.executions.list",
           run_v2.ListExecutionsResponse.pb(), query=PAGING),
    _route("GetExecution", "GET", _EXECUTION, "run.executions.get", EXECUTION),
    _route("DeleteExecution", "DELETE", _EXECUTION, "run.executions.delete", OPERATION,
           query=frozenset({"validateOnly", "etag"})),
    _route("CancelExecution", "POST", _EXECUTION + ":cancel", "run.executions.cancel", OPERATION,
           request=run_v2.CancelExecutionRequest.pb()),
    _route("ListTasks", "GET", _EXECUTION + "/tasks", "run.tasks.list", run_v2.ListTasksResponse.pb(),
           query=PAGING),
    _route("GetTask", "GET", _EXECUTION + r"/tasks/(?P<task>[^/:]+)", "run.tasks.get", TASK),
    _route("GetOperation", "GET", _LOC + r"/operations/(?P<operation>[^/:]+)", "run.operations.get", OPERATION),
    _route("WaitOperation", "POST", _LOC + r"/operations/(?P<operation>[^/:]+):wait", "run.operations.get",
           OPERATION, request=operations_pb2.WaitOperationRequest),
    _route("ListOperations", "GET", _LOC + "/operations", "run.operations.list", None),
    _route("DeleteOperation", "DELETE", _LOC + r"/operations/(?P<operation>[^/:]+)", "run.operations.delete", None),
]


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route and its path ids; None for any path or method the API has not (Google answers 404 to both)."""
    found = match_route(ROUTES, method, path)
    return None if found.route is None else (found.route, found.params)


def resource_names(ids: dict[str, str]) -> dict[str, str]:
    """Full resource names from the path's ids: ``location``, ``job``, ``execution``, ``task``, ``operation``."""
    names = {"location": f"projects/{ids['project']}/locations/{ids['location']}"}
    if "job" in ids:
        names["job"] = f"{names['location']}/jobs/{ids['job']}"
    if "execution" in ids:
        names["execution"] = f"{names['job']}/executions/{ids['execution']}"
    if "task" in ids:
        names["task"] = f"{names['execution']}/tasks/{ids['task']}"
    if "operation" in ids:
        names["operation"] = f"{names['location']}/operations/{ids['operation']}"
    return names
