"""Setting a flow run's state: the one helper every loop uses, so the metric has one meaning.

``dispatcher_state_changes_total{state}`` counts states the dispatcher *set* (proposals
Prefect accepted), by state name; claims are counted apart (``runs_claimed_total``).
"""

from __future__ import annotations

import logging
from uuid import UUID, uuid4

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


async def undo_claim(prefect: PrefectApi, flow_run_id: UUID, claim: State) -> State | None:
    """Put a run our claim moved out of a final state back into that state (forced); the restored state.

    Prefect accepts PENDING after COMPLETED (without a persisted result), FAILED or CANCELLED:
    only PENDING, RUNNING and CANCELLING runs refuse a second claim. A claim that raced a run
    which finished meanwhile must not start it again.
    """
    # The state it replaced is the latest other one: nothing moves a claimed run on before we look, and the
    # claim's own timestamp is its client's (it can sort before states committed earlier than it).
    others = [state for state in await prefect.read_states(flow_run_id) if state.id != claim.id]
    if not others or not others[-1].is_final():
        return None
    return await restore_end(prefect, flow_run_id, others[-1])


async def ended_after(prefect: PrefectApi, flow_run_id: UUID, claim_id: UUID, ignoring: UUID) -> State | None:
    """The latest final state after the claim ``claim_id`` in the run's history (``ignoring`` one state:
    a later claim, whose own timestamp may be its client's and sort anywhere); None if it did not end."""
    history = await prefect.read_states(flow_run_id)
    # A legacy attempt (id = flow run id) names no state: then any end in the history counts.
    position = next((i for i, state in enumerate(history) if state.id == claim_id), -1)
    ends = [state for state in history[position + 1:] if state.is_final() and state.id != ignoring]
    return ends[-1] if ends else None


async def restore_end(prefect: PrefectApi, flow_run_id: UUID, previous: State) -> State | None:
    """Put a run a late claim moved out of its final state ``previous`` back into it (forced)."""
    restored = previous.model_copy(update={"id": uuid4(), "timestamp": None, "state_details": previous.state_details.model_copy()})
    result = await prefect.propose(flow_run_id, restored, force=True)
    log.warning("flow run %s had ended (%s) before a claim landed; its state is restored, nothing was started",
                flow_run_id, previous.name)
    return result.state
