"""Cloud Run executions -> provider-neutral results (pure).

An execution's outcome is its ``Completed`` condition: ``CONDITION_SUCCEEDED``,
``CONDITION_FAILED`` (with ``executionReason`` NON_ZERO_EXIT_CODE, CANCELLED or DELETED,
or none for a start failure or a task that hit its timeout), or still settling
(``CONDITION_PENDING`` / ``CONDITION_RECONCILING``, ``executionReason`` CANCELLING or
DELAYED_START_PENDING). Every combination is mapped explicitly; anything else is logged
and becomes UNKNOWN, never a success. Task retries show in ``retriedCount``.

Metering timestamps: ``started_at`` is the execution's ``startTime`` ("started to run")
and ``stopped_at`` its ``completionTime`` (also set on cancel). Cloud Run bills job
instances for their whole lifetime, rounded up to 100 ms; with one task per execution,
startTime -> completionTime is that lifetime as far as the Admin API shows it without a
per-task call (``createTime`` is queueing in the controller, which is not billed).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Optional

from google.cloud import run_v2

from providers.base import InfraPhase, InfraStatus, StopCause

logger = logging.getLogger(__name__)

State = run_v2.Condition.State
Reason = run_v2.Condition.ExecutionReason
_EXIT_CODE = re.compile(r"exit code:? (\d+)", re.IGNORECASE)
#: Cloud Run's words for a task killed at its timeout (PrefectHQ/prefect#14497 quotes them).
TIMEOUT_TEXT = "timeout was reached"
START_FAILURE_TYPES = ("ContainerReady", "ResourcesAvailable", "Started")


def _utc(value: Optional[datetime]) -> Optional[datetime]:
    if value is None or (isinstance(value, datetime) and value.timestamp() <= 0):
        return None  # proto-plus returns the epoch for an unset Timestamp in some versions
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def completed_condition(execution: run_v2.Execution) -> Optional[run_v2.Condition]:
    return next((c for c in execution.conditions if c.type_ == "Completed"), None)


def _failed_start(execution: run_v2.Execution) -> Optional[run_v2.Condition]:
    return next((c for c in execution.conditions
                 if c.type_ in START_FAILURE_TYPES and c.state == State.CONDITION_FAILED), None)


def _native(condition: Optional[run_v2.Condition], execution: run_v2.Execution) -> str:
    if condition is None:
        return "NO_COMPLETED_CONDITION"
    text = f"Completed={State(condition.state).name}"
    if condition.execution_reason:
        text += f"/{Reason(condition.execution_reason).name}"
    if execution.retried_count:
        text += f" (retried {execution.retried_count})"
    return text


def _reason(message: str, execution: run_v2.Execution) -> str:
    """Cloud Run's own words and where the execution's logs are."""
    parts = [message.strip() or "no message from Cloud Run"]
    if execution.retried_count:
        parts.append(f"{execution.retried_count} task attempt(s) were retried")
    if execution.log_uri:
        parts.append(f"Logs: {execution.log_uri}")
    return "; ".join(parts)


def execution_status(execution: run_v2.Execution, infrastructure_id: str) -> InfraStatus:
    condition = completed_condition(execution)
    started, stopped = _utc(execution.start_time), _utc(execution.completion_time)
    base = {"infrastructure_id": infrastructure_id, "native_state": _native(condition, execution),
            "started_at": started}
    if condition is None:
        logger.warning("Cloud Run execution %s has no Completed condition; treated as UNKNOWN", infrastructure_id)
        return InfraStatus(phase=InfraPhase.UNKNOWN, **base, reason="Cloud Run reported no Completed condition")
    state, reason = condition.state, condition.execution_reason
    message = condition.message or ""
    if state == State.CONDITION_SUCCEEDED:
        return InfraStatus(phase=InfraPhase.EXITED, stopped_at=stopped, exit_code=0, stop_cause=StopCause.EXITED,
                           reason=_reason(message, execution), **base)
    if state == State.CONDITION_FAILED:
        return _failed(execution, condition, base, stopped)
    if state in (State.CONDITION_PENDING, State.CONDITION_RECONCILING):
        # CANCELLING and DELAYED_START_PENDING are still settling: running (or queued) until Completed says more.
        running = started is not None or execution.running_count > 0
        if reason not in (Reason.EXECUTION_REASON_UNDEFINED, Reason.CANCELLING, Reason.DELAYED_START_PENDING,
                          Reason.JOB_STATUS_SERVICE_POLLING_ERROR):
            logger.warning("Cloud Run execution %s: unexpected reason %s while %s", infrastructure_id,
                           Reason(reason).name, State(state).name)
        return InfraStatus(phase=InfraPhase.RUNNING if running else InfraPhase.PENDING, **base,
                           reason=message or None)
    logger.warning("Cloud Run execution %s is in state %s; treated as UNKNOWN", infrastructure_id, base["native_state"])
    return InfraStatus(phase=InfraPhase.UNKNOWN, **base, reason=_reason(message, execution))


def _failed(execution: run_v2.Execution, condition: run_v2.Condition, base: dict, stopped: Optional[datetime]
            ) -> InfraStatus:
    reason, message = condition.execution_reason, condition.message or ""
    found = _EXIT_CODE.search(message)
    exit_code = int(found[1]) if found else None
    text = _reason(message, execution)
    if reason == Reason.CANCELLED:
        cause = StopCause.STOPPED
    elif reason == Reason.DELETED:
        cause, text = StopCause.STOPPED, _reason(f"the execution was deleted. {message}", execution)
    elif reason == Reason.NON_ZERO_EXIT_CODE:
        cause = StopCause.EXITED
    elif TIMEOUT_TEXT in message.lower():
        cause = StopCause.TIMED_OUT  # DEADLINE_EXCEEDED on the task's last attempt
    elif _failed_start(execution) is not None or base["started_at"] is None:
        cause = StopCause.FAILED_TO_START
        start = _failed_start(execution)
        text = _reason(start.message if start is not None and start.message else message, execution)
    elif exit_code is not None:
        cause = StopCause.EXITED
    else:
        logger.warning("Cloud Run execution %s failed with reason %s: %s", base["infrastructure_id"],
                       Reason(reason).name, message)
        cause = StopCause.UNKNOWN
    return InfraStatus(phase=InfraPhase.EXITED, stopped_at=stopped, exit_code=exit_code, stop_cause=cause,
                       reason=text, **base)

