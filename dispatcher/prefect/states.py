"""Setting a flow run's state: the one helper every loop uses, so the metric has one meaning.

``dispatcher_state_changes_total{state}`` counts states the dispatcher *set* (proposals
Prefect accepted), by state name; claims are counted apart (``runs_claimed_total``).
"""

from __future__ import annotations

import logging
from uuid import UUID

from prefect.client.schemas.objects import State

from dispatcher import metrics
from dispatcher.prefect.api import PrefectApi, Proposal, ProposalResult

log = logging.getLogger(__name__)


async def set_state(prefect: PrefectApi, flow_run_id: UUID, state: State, *, force: bool = False) -> ProposalResult:
    """Propose ``state``; count and log it when accepted, say why when not (Prefect decides, not us)."""
    result = await prefect.propose(flow_run_id, state, force=force)
    if result.outcome == Proposal.ACCEPTED:
        metrics.STATE_CHANGES.labels(prefect.config.name, state.name).inc()
        log.info("flow run %s -> %s: %s", flow_run_id, state.name, state.message or "")
    else:
        log.info("flow run %s: %s not accepted (%s)", flow_run_id, state.name, result.reason or result.outcome.value)
    return result
