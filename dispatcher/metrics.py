"""Prometheus metrics. Labels carry names (workspace, pool, provider), never secrets or run ids."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60)

RUNS_CLAIMED = Counter("dispatcher_runs_claimed_total", "Flow runs claimed (proposed PENDING, accepted).", ["workspace", "pool"])
CLAIMS_REFUSED = Counter("dispatcher_claims_refused_total", "PENDING proposals refused (another replica or a person owns the run).", ["workspace", "pool"])
RUNS_SUBMITTED = Counter("dispatcher_runs_submitted_total", "Infrastructure submissions that succeeded.", ["workspace", "pool", "provider"])
RUNS_REJECTED = Counter("dispatcher_runs_rejected_total", "Runs ended before submission (limits, bad job variables, submit errors).", ["workspace", "pool", "reason"])
RUNS_FINISHED = Counter("dispatcher_runs_finished_total", "Runs whose infrastructure is gone and that were metered.", ["workspace", "pool", "state"])
STATE_CHANGES = Counter("dispatcher_state_changes_total", "States the dispatcher set on flow runs.", ["workspace", "state"])
CLAIM_LATENCY = Histogram("dispatcher_claim_latency_seconds", "Scheduled time to accepted PENDING.", ["workspace"], buckets=_LATENCY_BUCKETS)
SUBMIT_LATENCY = Histogram("dispatcher_submit_latency_seconds", "Scheduled time to infrastructure submitted.", ["workspace"], buckets=_LATENCY_BUCKETS)
INFLIGHT = Gauge("dispatcher_inflight_runs", "Runs being watched.", ["workspace"])
PROVIDER_CALLS = Counter("dispatcher_provider_calls_total", "Provider operations called.", ["provider", "operation"])
PROVIDER_ERRORS = Counter("dispatcher_provider_errors_total", "Provider operations that raised.", ["provider", "operation", "error"])
PROVIDER_CALL_SECONDS = Histogram("dispatcher_provider_call_seconds", "Duration of one provider operation, retries included.", ["provider", "operation"], buckets=_LATENCY_BUCKETS)
PROVIDER_RETRIES = Counter("dispatcher_provider_retries_total", "Retries of transient provider errors.", ["provider", "operation", "error"])
COMPUTE_MINUTES = Counter("dispatcher_compute_minutes_total", "Billed compute minutes metered.", ["workspace", "pool"])
LOOP_ERRORS = Counter("dispatcher_loop_errors_total", "Loop ticks that failed (a dependency down, or an unexpected error).", ["workspace", "loop"])
RUN_ERRORS = Counter("dispatcher_run_errors_total", "Unexpected errors while handling one run (other runs are unaffected).", ["workspace", "stage"])
DEPENDENCY_UP = Gauge("dispatcher_dependency_up", "1 while a dependency answers, 0 from its first failed call until its next success.", ["workspace", "dependency"])
DEPENDENCY_FAILURES = Counter("dispatcher_dependency_failures_total", "Calls that failed because a dependency was unreachable or refused us.", ["workspace", "dependency"])
