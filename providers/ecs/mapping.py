"""ECS answers -> provider-neutral results (pure).

Lifecycle (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html):
PROVISIONING -> PENDING -> ACTIVATING -> RUNNING -> DEACTIVATING -> STOPPING ->
DEPROVISIONING -> STOPPED (-> DELETED). Every state and stop code is mapped
explicitly; anything else is logged and becomes UNKNOWN, never a success.

Metering timestamps: ``started_at`` is ``pullStartedAt`` (``startedAt`` when the
task never pulled an image) and ``stopped_at`` is ``stoppedAt`` (``executionStoppedAt``
until the task is STOPPED). Fargate bills "from the time you start to download
your container image until the Amazon ECS task terminates, rounded up to the
nearest second" (https://aws.amazon.com/fargate/pricing/), so metering the same
interval makes the ledger match the AWS bill. ``startedAt`` (container started)
would under-count the image pull, which is paid for and can take minutes for
large images; a task stopped before it pulled has no start and is not metered.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Optional

from providers.base import InfraPhase, InfraStatus, StopCause
from providers.errors import CapacityError, ProviderError, SubmissionRejected

logger = logging.getLogger(__name__)

PHASE_OF_STATUS: dict[str, InfraPhase] = {
    "PROVISIONING": InfraPhase.PENDING,  # ENI and capacity being set up
    "PENDING": InfraPhase.PENDING,  # image pull
    "ACTIVATING": InfraPhase.PENDING,  # load balancer / service discovery registration
    "RUNNING": InfraPhase.RUNNING,
    # Still holding (and billing) compute; the container may already have exited.
    "DEACTIVATING": InfraPhase.RUNNING,
    "STOPPING": InfraPhase.RUNNING,
    "DEPROVISIONING": InfraPhase.RUNNING,
    "STOPPED": InfraPhase.EXITED,
    "DELETED": InfraPhase.EXITED,
}
CAUSE_OF_STOP_CODE: dict[str, StopCause] = {
    "TaskFailedToStart": StopCause.FAILED_TO_START,  # image pull, ENI, secrets, log group...
    "EssentialContainerExited": StopCause.EXITED,
    "UserInitiated": StopCause.STOPPED,  # StopTask (usually ours)
    "ServiceSchedulerInitiated": StopCause.STOPPED,  # an ECS service's scheduler stopped it
    "SpotInterruption": StopCause.INTERRUPTED,
    "TerminationNotice": StopCause.INTERRUPTED,  # Fargate task retirement / maintenance
}
#: RunTask failure reasons that mean "no room right now" rather than "this request is wrong".
CAPACITY_REASONS = ("RESOURCE:", "AGENT")


def _utc(value: Any) -> Optional[datetime]:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    return None


def flow_container(task: dict[str, Any], container_name: str) -> dict[str, Any]:
    """The container that runs the flow: by name, else the only one, else the first that exited."""
    containers = task.get("containers") or []
    named = next((c for c in containers if c.get("name") == container_name), None)
    if named is not None or len(containers) <= 1:
        return named or (containers[0] if containers else {})
    return next((c for c in containers if c.get("exitCode") is not None), containers[0])


def _reason(task: dict[str, Any], container: dict[str, Any]) -> Optional[str]:
    parts = [task.get("stoppedReason"), container.get("reason")]
    unique = [p for i, p in enumerate(parts) if p and p not in parts[:i]]
    return "; ".join(unique) or None


def _stop_cause(task: dict[str, Any], infrastructure_id: str) -> StopCause:
    code = task.get("stopCode")
    if code in CAUSE_OF_STOP_CODE:
        return CAUSE_OF_STOP_CODE[code]
    logger.warning("ECS task %s stopped with unknown stopCode %r", infrastructure_id, code)
    return StopCause.UNKNOWN


def task_status(task: dict[str, Any], infrastructure_id: str, container_name: str) -> InfraStatus:
    """One DescribeTasks task as an InfraStatus."""
    last_status = str(task.get("lastStatus") or "")
    phase = PHASE_OF_STATUS.get(last_status)
    container = flow_container(task, container_name)
    native = last_status + (f"/{task['stopCode']}" if task.get("stopCode") else "")
    if phase is None:
        logger.warning("ECS task %s is in unknown lastStatus %r", infrastructure_id, last_status)
        phase = InfraPhase.UNKNOWN
    return InfraStatus(
        infrastructure_id=infrastructure_id,
        phase=phase,
        native_state=native or "UNKNOWN",
        started_at=_utc(task.get("pullStartedAt")) or _utc(task.get("startedAt")),
        stopped_at=_utc(task.get("stoppedAt")) or _utc(task.get("executionStoppedAt")),
        exit_code=container.get("exitCode"),
        stop_cause=_stop_cause(task, infrastructure_id) if phase == InfraPhase.EXITED else None,
        reason=_reason(task, container),
    )


def failure_status(failure: dict[str, Any], infrastructure_id: str) -> InfraStatus:
    """A DescribeTasks ``failures`` entry: MISSING means ECS has no such task (any more)."""
    reason = str(failure.get("reason") or "")
    detail = failure.get("detail")
    text = f"{reason}: {detail}" if detail else reason
    if reason == "MISSING":
        return InfraStatus(infrastructure_id=infrastructure_id, phase=InfraPhase.NOT_FOUND, native_state="MISSING",
                           reason="ECS has no record of this task (stopped tasks are kept for about an hour)")
    logger.warning("ECS could not describe task %s: %s", infrastructure_id, text)
    return InfraStatus(infrastructure_id=infrastructure_id, phase=InfraPhase.UNKNOWN, native_state=reason or "UNKNOWN",
                       reason=text or None)




def run_task_failure(failures: list[dict[str, Any]]) -> ProviderError:
    """RunTask answered 200 but placed no task: capacity (retry later) or a rejection (do not)."""
    first = failures[0] if failures else {}
    reason = str(first.get("reason") or "no task and no failure reason")
    detail = first.get("detail")
    message = f"ECS RunTask placed no task: {reason}" + (f" ({detail})" if detail else "")
    if reason.startswith(CAPACITY_REASONS) or "capacity" in reason.lower():
        return CapacityError(message, code=reason)
    return SubmissionRejected(message, code=reason)
