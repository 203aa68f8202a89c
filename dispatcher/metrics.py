"""Prometheus metrics, named as Prometheus asks: base units in the name (seconds), ``_total`` on counters,
bounded label sets. Labels carry names (workspace, pool, provider, operation, error class, state
name, loop), never secrets or run ids.

Counters count what *this replica* did (sum them over replicas); the ``dispatcher_budget_*`` and
``dispatcher_month_*`` gauges are read from the shared ledger, so every replica reports the same
value (take ``max`` over replicas). README.md lists them all (a test keeps it in sync).
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60)

# -- dispatching ------------------------------------------------------------------------------------
RUNS_CLAIMED = Counter("dispatcher_runs_claimed_total", "Flow runs claimed (proposed PENDING, accepted).", ["workspace", "pool"])
CLAIMS_REFUSED = Counter("dispatcher_claims_refused_total", "PENDING proposals refused (another replica or a person owns the run).", ["workspace", "pool"])
RUNS_SUBMITTED = Counter("dispatcher_runs_submitted_total", "Infrastructure submissions that succeeded.", ["workspace", "pool", "provider"])
RUNS_REJECTED = Counter("dispatcher_runs_rejected_total", "Runs ended before submission, by reason (limits, bad job variables, budget, submit errors).", ["workspace", "pool", "reason"])
RUNS_HELD = Counter("dispatcher_runs_held_total", "Runs held back Scheduled because a budget in hold mode is used up.", ["workspace", "pool"])
RUNS_FINISHED = Counter("dispatcher_runs_finished_total", "Runs whose infrastructure is gone and that were metered, by final state.", ["workspace", "pool", "state"])
STATE_CHANGES = Counter("dispatcher_state_changes_total", "States the dispatcher set on flow runs.", ["workspace", "state"])
CLAIM_LATENCY = Histogram("dispatcher_claim_latency_seconds", "Scheduled time to accepted PENDING.", ["workspace"], buckets=_LATENCY_BUCKETS)
SUBMIT_LATENCY = Histogram("dispatcher_submit_latency_seconds", "Scheduled time to infrastructure submitted.", ["workspace"], buckets=_LATENCY_BUCKETS)
WATCH_TICK_SECONDS = Histogram(
    "dispatcher_watch_tick_seconds", "One watch tick: observe every watched run (cloud and Prefect) and act on each.",
    ["workspace"], buckets=_LATENCY_BUCKETS)
RECOVERY_PASS_SECONDS = Histogram(
    "dispatcher_recovery_pass_seconds", "One recovery pass: read every active run and unmetered attempt, act on those that need it.",
    ["workspace"], buckets=_LATENCY_BUCKETS)
INFLIGHT = Gauge("dispatcher_inflight_runs", "Runs being watched by this replica.", ["workspace"])
REPLICAS_LIVE = Gauge("dispatcher_replicas_live", "Replicas of the workspace this replica sees alive (itself included).", ["workspace"])
WATCH_HANDOVERS = Counter(
    "dispatcher_watch_handovers_total", "Attempts this replica stopped watching because their owner adopted them.", ["workspace"]
)
UNSUBMITTED_CLAIMS = Gauge("dispatcher_unsubmitted_claims", "Claims recorded in the ledger with no submission and no final state.", ["workspace"])
OLDEST_UNSUBMITTED_CLAIM = Gauge("dispatcher_oldest_unsubmitted_claim_age_seconds", "Age of the oldest such claim (0: none): runs stuck PENDING.", ["workspace"])

# -- providers --------------------------------------------------------------------------------------
PROVIDER_CALLS = Counter("dispatcher_provider_calls_total", "Provider operations called.", ["provider", "operation"])
PROVIDER_ERRORS = Counter("dispatcher_provider_errors_total", "Provider operations that raised, by error class.", ["provider", "operation", "error"])
PROVIDER_CALL_SECONDS = Histogram("dispatcher_provider_call_duration_seconds", "Duration of one provider operation, retries included.", ["provider", "operation"], buckets=_LATENCY_BUCKETS)
PROVIDER_RETRIES = Counter("dispatcher_provider_retries_total", "Retries of transient provider errors (ThrottledError: the cloud throttles us).", ["provider", "operation", "error"])
PROVIDER_BACKLOG = Gauge("dispatcher_provider_submit_backlog_seconds", "How long a submission asked for now would wait for the cloud's quota (client-side pacing).", ["provider"])

# -- metering and budgets -----------------------------------------------------------------------------
COMPUTE_SECONDS = Counter("dispatcher_compute_billed_seconds_total", "Billed compute metered by this replica (billed minutes x 60).", ["workspace", "pool"])
MONTH_USAGE = Gauge("dispatcher_month_usage_seconds", "This month's compute per pool from the ledger: billed, plus elapsed time of runs in flight.", ["workspace", "pool"])
BUDGET_LIMIT = Gauge("dispatcher_budget_limit_seconds", "A monthly budget (pool '' is the workspace's own).", ["workspace", "pool"])
BUDGET_USED = Gauge("dispatcher_budget_used_seconds", "This month's use of that budget (billed plus in flight).", ["workspace", "pool"])
BUDGET_RATIO = Gauge("dispatcher_budget_used_ratio", "Used / budget (1 = used up).", ["workspace", "pool"])
BUDGET_ALERTS = Counter("dispatcher_budget_alerts_total", "Budget thresholds crossed (alerted once per month across replicas).", ["workspace", "pool", "threshold"])
BUDGET_STOPS = Counter("dispatcher_budget_stopped_runs_total", "Running runs stopped because their budget was used up (running_runs: stop).", ["workspace", "pool"])

# -- events to Prefect --------------------------------------------------------------------------------
EVENTS_DELIVERED = Counter("dispatcher_events_delivered_total", "Events delivered to the workspace's Prefect.", ["workspace", "event"])
EVENT_FAILURES = Counter("dispatcher_event_delivery_failures_total", "Delivery attempts that failed (the event stays queued and is retried).", ["workspace"])
EVENTS_DROPPED = Counter("dispatcher_events_dropped_total", "Events dropped after staying undeliverable for the outbox's maximum age.", ["workspace"])
EVENTS_QUEUED = Gauge("dispatcher_events_queued", "Events in the ledger's outbox not yet delivered.", ["workspace"])

# -- health -----------------------------------------------------------------------------------------
LOOP_ERRORS = Counter("dispatcher_loop_errors_total", "Loop ticks that failed (a dependency down, or an unexpected error).", ["workspace", "loop"])
LOOP_LAST_SUCCESS = Gauge("dispatcher_loop_last_success_timestamp_seconds", "Unix time of the loop's last successful tick (heartbeat: the pool heartbeat loop).", ["workspace", "loop"])
RUN_ERRORS = Counter("dispatcher_run_errors_total", "Unexpected errors while handling one run (other runs are unaffected).", ["workspace", "stage"])
DEPENDENCY_UP = Gauge("dispatcher_dependency_up", "1 while a dependency answers, 0 from its first failed call until its next success.", ["workspace", "dependency"])
DEPENDENCY_FAILURES = Counter("dispatcher_dependency_failures_total", "Calls that failed because a dependency was unreachable or refused us.", ["workspace", "dependency"])

#: Prefect's own final state names; any other name a flow gives its final state is counted by type.
_KNOWN_FINAL_STATES = {"Completed", "Failed", "Crashed", "Cancelled", "TimedOut", "ComputeLimitReached", "Retried",
                       "Deleted", "Cached", "RolledBack"}


def final_state_label(state_name: str, state_type: str | None = None) -> str:
    """A bounded ``state`` label: flows may name their final states anything."""
    if state_name in _KNOWN_FINAL_STATES:
        return state_name
    return (state_type or "other").capitalize()


def dispatcher_metric_names(registry: CollectorRegistry = REGISTRY) -> dict[str, set[str]]:
    """Every sample name this process exports that starts with ``dispatcher_``, with its label names."""
    names: dict[str, set[str]] = {}
    for family in registry.collect():
        if not family.name.startswith("dispatcher_"):
            continue
        labels = set(getattr(_collector(registry, family.name), "_labelnames", ()))
        suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"],
                    "gauge": [""]}.get(family.type, [""])
        for suffix in suffixes:
            names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def _collector(registry: CollectorRegistry, name: str) -> object:
    mapping = registry._names_to_collectors  # noqa: SLF001 - the only way to reach a family's label names
    return mapping.get(name) or mapping.get(name + "_total")
