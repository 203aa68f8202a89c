"""The Prefect events the dispatcher emits to a workspace (pure builders; delivery is ``delivery.py``).

- ``prefect-push-dispatcher.compute.metered``: one per metered attempt, about its flow run
  (``prefect.flow-run.<id>``), with the minutes in its payload.
- ``prefect-push-dispatcher.budget.threshold-crossed``: one per budget, threshold and month,
  about the budget (``prefect-push-dispatcher.budget.<workspace>[.<pool>]``).

Event ids are uuid5 of what the event reports, so a resend is the same event.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from prefect.events.schemas.events import Event

from dispatcher.ledger.models import LedgerRun
from dispatcher.ledger.outbox import OutboxEvent
from dispatcher.policy.budget import BudgetUse

METERED = "prefect-push-dispatcher.compute.metered"
THRESHOLD_CROSSED = "prefect-push-dispatcher.budget.threshold-crossed"
_NAMESPACE = uuid.UUID("1f4b1c2e-7d0a-4b7e-9a55-2f3c6d9e8b10")


def metered_event(run: LedgerRun) -> OutboxEvent:
    """The event of one metered attempt."""
    related = [_related(f"prefect.work-pool.name.{run.pool}", "work-pool", run.pool)]
    if run.deployment_id:
        related.append(_related(f"prefect.deployment.{run.deployment_id}", "deployment", run.deployment_name or ""))
    if run.flow_name:
        related.append(_related(f"prefect-push-dispatcher.flow.{run.flow_name}", "flow", run.flow_name))
    event = Event(
        id=uuid.uuid5(_NAMESPACE, f"metered:{run.attempt_id}"),
        occurred=run.stopped_at or run.metered_at or run.updated_at,
        event=METERED,
        resource={"prefect.resource.id": f"prefect.flow-run.{run.flow_run_id}",
                  "prefect.resource.name": run.flow_run_name or run.flow_run_id},
        related=related,
        payload={
            "workspace": run.workspace, "pool": run.pool, "provider": run.provider, "attempt": run.attempt,
            "attempt_id": run.attempt_id, "month": run.usage_month, "billed_minutes": run.billed_minutes,
            "compute_seconds": run.compute_seconds, "vcpu": run.vcpu, "memory_mib": run.memory_mib,
        },
    )
    return _outbox(run.workspace, event)


def threshold_event(use: BudgetUse, threshold_pct: int, now: datetime) -> OutboxEvent:
    """The event of a budget crossing ``threshold_pct`` percent in its month."""
    budget_id = f"prefect-push-dispatcher.budget.{use.workspace}" + (f".{use.pool}" if use.pool else "")
    event = Event(
        id=uuid.uuid5(_NAMESPACE, f"threshold:{use.workspace}:{use.pool or ''}:{use.month}:{threshold_pct}"),
        occurred=now,
        event=THRESHOLD_CROSSED,
        resource={"prefect.resource.id": budget_id, "prefect.resource.name": use.owner},
        payload={
            "workspace": use.workspace, "pool": use.pool, "month": use.month, "threshold_pct": threshold_pct,
            "used_minutes": use.used_minutes, "budget_minutes": use.budget_minutes,
        },
    )
    return _outbox(use.workspace, event)


def _related(resource_id: str, role: str, name: str) -> dict[str, str]:
    return {"prefect.resource.id": resource_id, "prefect.resource.role": role, "prefect.resource.name": name}


def _outbox(workspace: str, event: Event) -> OutboxEvent:
    return OutboxEvent(event_id=str(event.id), workspace=workspace, event=event.event, body=event.model_dump_json())
