"""What the ledger records about an attempt at admission, read from its resolved job configuration (pure)."""

from __future__ import annotations

from prefect.client.schemas.objects import FlowRun
from prefect.workers.base import BaseJobConfiguration

from dispatcher.ledger.models import RunFacts
from providers.base import ResourceRequest


def run_facts(flow_run: FlowRun, configuration: BaseJobConfiguration, request: ResourceRequest) -> RunFacts:
    """Deployment, flow and run names from the labels Prefect puts on every job configuration
    (``prefect.io/deployment-name``...), the resources from the provider's reading of it."""
    labels = configuration.labels or {}
    return RunFacts(
        deployment_id=str(flow_run.deployment_id) if flow_run.deployment_id else None,
        deployment_name=_short(labels.get("prefect.io/deployment-name")),
        flow_name=_short(labels.get("prefect.io/flow-name")),
        flow_run_name=_short(labels.get("prefect.io/flow-run-name") or flow_run.name),
        vcpu=request.vcpu,
        memory_mib=request.memory_mib,
    )


def _short(name: str | None) -> str | None:
    """Names fit their 255-character columns."""
    return name[:255] if name else None
