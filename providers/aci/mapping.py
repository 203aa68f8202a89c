"""ACI answers -> provider-neutral results (pure).

States (MicrosoftDocs azure-compute-docs ``container-instances/container-state.md``):
provisioningState Pending -> Creating -> Succeeded (or Failed; Repairing, Unhealthy and
Deleting are transitional); the group's ``instanceView.state`` Pending, Running,
Succeeded, Failed (restartPolicy Never), Stopped; each container's
``currentState.state`` Waiting, Running, Terminated (exitCode, finishTime,
detailStatus). Every value is mapped explicitly; anything else is logged and becomes
UNKNOWN, never a success.

Metering: ``started_at`` is the first image-pull event (``Pulling.firstTimestamp``, the
earliest over containers), else the container's ``startTime``; ``stopped_at`` is the
latest container ``finishTime`` once every container is Terminated (else the last event
of a failed deployment). The ACI FAQ: "duration is calculated from the time that we start
to pull your first container's image ... until the container group is stopped".
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Optional

from providers.base import InfraPhase, InfraStatus, StopCause

logger = logging.getLogger(__name__)

PROVISIONING: dict[str, Optional[InfraPhase]] = {
    "Pending": InfraPhase.PENDING,
    "Creating": InfraPhase.PENDING,  # image pull, container start
    "Succeeded": None,  # deployed: the group's own state decides
    "Repairing": None,  # the platform is moving the group: its state decides
    "Unhealthy": None,
    "Deleting": None,
    "Updating": None,
    "Failed": InfraPhase.EXITED,  # the deployment failed (image pull, start, 30-minute timeout)
    "Canceled": InfraPhase.EXITED,
}
GROUP_STATE: dict[str, InfraPhase] = {
    "Pending": InfraPhase.PENDING,
    "Running": InfraPhase.RUNNING,
    "Succeeded": InfraPhase.EXITED,  # every container exited 0
    "Failed": InfraPhase.EXITED,  # a container exited non-zero (or failed to start)
    "Stopped": InfraPhase.EXITED,  # POST stop (usually ours)
}
CONTAINER_STATES = ("Waiting", "Running", "Terminated")
#: Warning events worth showing in a crash message (image pull, start failures).
REASON_EVENTS = ("Failed", "BackOff", "Killing")


def _utc(value: Any) -> Optional[datetime]:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


def _events(group: Any) -> list[Any]:
    found = list(getattr(group.instance_view, "events", None) or []) if group.instance_view else []
    for container in group.containers or []:
        view = container.instance_view
        found.extend(view.events or [] if view else [])
    return found


def _current(container: Any) -> Any:
    return container.instance_view.current_state if container.instance_view else None


def started_at(group: Any) -> Optional[datetime]:
    pulls = [_utc(e.first_timestamp) for e in _events(group) if e.name == "Pulling" and e.first_timestamp]
    if pulls:
        return min(t for t in pulls if t is not None)
    starts = [_utc(_current(c).start_time) for c in group.containers or [] if _current(c) and _current(c).start_time]
    return min((t for t in starts if t is not None), default=None)


def stopped_at(group: Any, failed_deployment: bool) -> Optional[datetime]:
    states = [_current(c) for c in group.containers or []]
    if states and all(s is not None and s.state == "Terminated" for s in states):
        finishes = [_utc(s.finish_time) for s in states if s.finish_time]
        if finishes:
            return max(t for t in finishes if t is not None)
    if failed_deployment:
        last = [_utc(e.last_timestamp or e.first_timestamp) for e in _events(group)]
        return max((t for t in last if t is not None), default=None)
    return None


def _reason(group: Any, flow: Any) -> Optional[str]:
    parts: list[str] = []
    state = _current(flow) if flow is not None else None
    if state is not None and state.detail_status:
        parts.append(f"container {state.state} ({state.detail_status})")
    for event in _events(group):
        if event.name in REASON_EVENTS and event.message and event.message not in parts:
            parts.append(str(event.message))
    return "; ".join(parts) or None


def flow_container(group: Any, name: str) -> Any:
    containers = group.containers or []
    return next((c for c in containers if c.name == name), containers[0] if containers else None)


def group_status(group: Any, infrastructure_id: str, container_name: str) -> InfraStatus:
    """A GET answer (with instanceView) as an InfraStatus."""
    provisioning = str(group.provisioning_state or "")
    view_state = str(group.instance_view.state) if group.instance_view and group.instance_view.state else ""
    flow = flow_container(group, container_name)
    current = _current(flow) if flow is not None else None
    container_state = str(current.state) if current is not None and current.state else ""
    native = "/".join(p for p in (provisioning, view_state, container_state) if p) or "UNKNOWN"
    if provisioning not in PROVISIONING or (view_state and view_state not in GROUP_STATE) or (
            container_state and container_state not in CONTAINER_STATES):
        logger.warning("ACI group %s is in unknown state %s", infrastructure_id, native)
        return InfraStatus(infrastructure_id=infrastructure_id, phase=InfraPhase.UNKNOWN, native_state=native,
                           reason=_reason(group, flow))
    failed_deployment = provisioning in ("Failed", "Canceled")
    phase = PROVISIONING[provisioning] or GROUP_STATE.get(view_state, InfraPhase.PENDING)
    if phase == InfraPhase.EXITED and not failed_deployment and _still_running(group):
        phase = InfraPhase.RUNNING  # Stopped, but a container is still being killed: compute is still billed
    exit_code = current.exit_code if current is not None and container_state == "Terminated" else None
    cause = None
    if phase == InfraPhase.EXITED:
        cause = _cause(failed_deployment, view_state, exit_code, current)
    return InfraStatus(
        infrastructure_id=infrastructure_id, phase=phase, native_state=native,
        started_at=started_at(group), stopped_at=stopped_at(group, failed_deployment) if phase == InfraPhase.EXITED
        else None,
        exit_code=exit_code, stop_cause=cause, reason=_reason(group, flow))


def _still_running(group: Any) -> bool:
    return any(_current(c) is not None and _current(c).state == "Running" for c in group.containers or [])


def _cause(failed_deployment: bool, view_state: str, exit_code: Optional[int], current: Any) -> StopCause:
    if failed_deployment:
        return StopCause.FAILED_TO_START
    if view_state == "Stopped":
        return StopCause.STOPPED
    if exit_code is not None:
        return StopCause.EXITED
    if current is not None and current.detail_status == "Killed":
        return StopCause.STOPPED
    return StopCause.FAILED_TO_START  # Failed without an exit code: the container never ran



def listed_status(infrastructure_id: str, provisioning: str) -> InfraStatus:
    """What List alone tells (no instanceView): only that the group exists and how far its deployment is."""
    phase = InfraPhase.PENDING if provisioning in ("Pending", "Creating", "") else InfraPhase.RUNNING
    if provisioning not in PROVISIONING and provisioning:
        logger.warning("ACI group %s lists unknown provisioningState %r", infrastructure_id, provisioning)
        phase = InfraPhase.UNKNOWN
    return InfraStatus(infrastructure_id=infrastructure_id, phase=phase, native_state=provisioning or "Listed")
