"""Long-running operations, whose state is read off the resource they are about.

CreateJob is done once the job is Ready (at once by default; an error if the
job's image is missing). DeleteJob and DeleteExecution are done at once.
RunJob carries the Execution in ``metadata`` from the first answer and stays
not done until the execution finishes: ``response`` on success or cancel,
``error`` on failure (cancelled executions complete without error).
CancelExecution is done once the execution is CANCELLED.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .codec import EXECUTION, JOB, packed
from .errors import RPC_CODES
from .resources import CANCELLED, DONE, FAILED, SUCCEEDED, Execution, Job, execution_conditions

JOB_KINDS = {"CreateJob", "DeleteJob"}


@dataclass
class Operation:
    name: str
    kind: str
    """The RPC that started it: CreateJob, DeleteJob, RunJob, CancelExecution, DeleteExecution."""
    resource: Job | Execution

    def to_api(self, now: float, job_view: Callable[[Job], dict[str, Any]]) -> dict[str, Any]:
        if self.kind in JOB_KINDS:
            assert isinstance(self.resource, Job)
            view, schema = job_view(self.resource), JOB
        else:
            assert isinstance(self.resource, Execution)
            view, schema = self.resource.to_api(), EXECUTION
        api: dict[str, Any] = {"name": self.name, "metadata": packed(schema, view)}
        done, error = self._outcome(now)
        if not done:
            return api
        api["done"] = True
        if error is not None:
            api["error"] = error
        else:
            api["response"] = packed(schema, view)
        return api

    def _outcome(self, now: float) -> tuple[bool, dict[str, Any] | None]:
        resource = self.resource
        if self.kind == "CreateJob":
            assert isinstance(resource, Job)
            if resource.missing_image is not None:
                return True, {"code": RPC_CODES["FAILED_PRECONDITION"],
                              "message": f"Image '{resource.missing_image}' not found."}
            return resource.ready(now), None
        if self.kind in ("DeleteJob", "DeleteExecution"):
            return True, None
        assert isinstance(resource, Execution)
        if resource.phase != DONE:
            return False, None
        if self.kind == "RunJob" and resource.outcome == FAILED:
            completed = execution_conditions(resource)[0]
            return True, {"code": RPC_CODES["FAILED_PRECONDITION"], "message": completed.get("message", "")}
        assert resource.outcome in (SUCCEEDED, FAILED, CANCELLED)
        return True, None
