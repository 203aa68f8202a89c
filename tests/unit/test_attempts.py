"""Which attempt a run's state belongs to, and when Prefect has moved on to another (pure)."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID, uuid4

import pytest
from prefect.client.schemas.objects import FlowRun, FlowRunPolicy
from prefect.states import Completed, Pending, Running, Scheduled
from prefect.workers.base import BaseJobConfiguration

from dispatcher.ledger import LedgerRun
from dispatcher.loops.recovery import _current_attempt
from dispatcher.loops.served import Attempt, TrackedRun

T0 = datetime(2026, 11, 30, tzinfo=timezone.utc)


def flow_run(state, infrastructure_pid: str | None = None, retry_type: str | None = None, run_id: UUID | None = None) -> FlowRun:
    return FlowRun(id=run_id or uuid4(), flow_id=uuid4(), state=state, infrastructure_pid=infrastructure_pid,
                   empirical_policy=FlowRunPolicy(retry_type=retry_type))


def row(run: FlowRun, attempt_id: str, attempt: int, infrastructure_id: str | None = None, final: str | None = None) -> LedgerRun:
    return LedgerRun(attempt_id=attempt_id, flow_run_id=str(run.id), attempt=attempt, workspace="w", pool="p",
                     provider="local", infrastructure_id=infrastructure_id, claimed_at=T0, final_state=final, updated_at=T0)


def tracked(run: FlowRun, attempt_id: UUID, infrastructure_id: str = "host:1") -> TrackedRun:
    return TrackedRun(attempt=Attempt(flow_run_id=run.id, attempt_id=attempt_id), pool=None, infrastructure_id=infrastructure_id,  # type: ignore[arg-type]
                      configuration=BaseJobConfiguration(), submitted_at=T0, max_runtime_s=60)


def test_a_pending_run_belongs_to_its_claims_attempt():
    claim = Pending()
    run = flow_run(claim)
    assert _current_attempt(run, []) == (Attempt(flow_run_id=run.id, attempt_id=claim.id), None)
    recorded = row(run, str(claim.id), 2)
    assert _current_attempt(run, [row(run, "old", 1, final="Failed"), recorded]) == (Attempt(flow_run_id=run.id, attempt_id=claim.id), recorded)


def test_a_pending_run_claimed_before_attempts_existed_keeps_its_legacy_attempt():
    run = flow_run(Pending())
    legacy = row(run, str(run.id), 1)
    assert _current_attempt(run, [legacy]) == (Attempt(flow_run_id=run.id, attempt_id=run.id), legacy)


def test_a_running_run_belongs_to_its_latest_open_attempt():
    run = flow_run(Running())
    rows = [row(run, str(uuid4()), 1, "host:1", final="Crashed"), row(run, str(uuid4()), 2, "host:2")]
    attempt, found = _current_attempt(run, rows)
    assert found is rows[1] and attempt.attempt_id == UUID(rows[1].attempt_id)
    assert _current_attempt(run, rows[:1]) == (None, None)


@pytest.mark.parametrize("state,pid,retry_type,superseded", [
    (Running(), "host:1", None, False),
    (Completed(), "host:1", None, False),
    (Scheduled(name="AwaitingRetry"), "host:1", "in_process", False),  # the engine's own retry, on our infrastructure
    (Scheduled(), "host:1", None, True),  # the UI's Retry / prefect flow-run retry
    (Pending(), "host:1", None, True),  # a new claim (another id)
    (Running(), "host:2", None, True),  # another attempt's infrastructure
])
def test_an_attempt_is_over_once_prefect_moves_on_to_a_retry(state, pid, retry_type, superseded):
    run = flow_run(state, infrastructure_pid=pid, retry_type=retry_type)
    assert tracked(run, uuid4()).superseded_by(run) is superseded


def test_a_legacy_attempt_is_recognised_by_its_infrastructure():
    run = flow_run(Pending(), infrastructure_pid="host:1")
    assert not tracked(run, run.id).superseded_by(run)  # claimed before attempts existed: still ours
    claim = Pending()
    assert not tracked(flow_run(claim, run_id=run.id), claim.id).superseded_by(flow_run(claim, run_id=run.id))
