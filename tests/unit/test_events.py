"""Which pools an event rings (pure)."""

from __future__ import annotations

from uuid import uuid4

from prefect.events.schemas.events import Event, RelatedResource, Resource

from dispatcher.prefect.events import SCHEDULED_EVENT, work_pools_of


def test_the_run_s_work_pool_is_rung_and_nothing_else():
    event = Event(
        occurred="2026-11-01T00:00:00Z", event=SCHEDULED_EVENT, id=uuid4(),
        resource=Resource({"prefect.resource.id": f"prefect.flow-run.{uuid4()}"}),
        related=[
            RelatedResource({"prefect.resource.id": f"prefect.flow.{uuid4()}", "prefect.resource.role": "flow", "prefect.resource.name": "hello"}),
            RelatedResource({"prefect.resource.id": f"prefect.work-pool.{uuid4()}", "prefect.resource.role": "work-pool", "prefect.resource.name": "ecs-prod"}),
            RelatedResource({"prefect.resource.id": f"prefect.work-queue.{uuid4()}", "prefect.resource.role": "work-queue", "prefect.resource.name": "default"}),
        ],
    )
    assert work_pools_of(event) == ["ecs-prod"]
