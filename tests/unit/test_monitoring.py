"""The Grafana dashboard and the Prometheus rules name only metrics and labels the dispatcher exports,
every exported metric follows Prometheus' naming, and the README lists exactly the exported metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml

from dispatcher import metrics

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "prefect-push-dispatcher.json"
RULES = REPO_ROOT / "monitoring" / "prometheus" / "dispatcher-alerts.yml"
#: Series Prometheus makes itself for every target, and the labels it adds to every scraped series.
PROMETHEUS_SERIES = {"up": set()}
TARGET_LABELS = {"job", "instance"}
#: Grafana's variables, replaced by values PromQL accepts.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$workspace": ".*"}


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # label_values(<metric>, <label>): the metric must carry the label
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"]).groups()
            expressions.append(f"max by ({label}) ({metric})")
    return expressions


def rule_expressions() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def as_promql(expression: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    return expression


def names_in(expression: str) -> tuple[dict[str, set[str]], set[str]]:
    """Metric name -> labels its matchers name; and every label named by by/without/on/ignoring/group_x."""
    selected: dict[str, set[str]] = {}
    grouping: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expression!r}"
            selected.setdefault(node.name, set()).update(m.name for m in node.matchers.matchers)
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouping.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                grouping.update(node.modifier.matching.labels)
            grouping.update(node.modifier.group_labels or [])

    promql_parser.walk(promql_parser.parse(as_promql(expression)), pre_visit=visit)
    return selected, grouping


@pytest.mark.parametrize("expression", dashboard_expressions() + rule_expressions())
def test_every_expression_parses_and_names_exported_metrics_and_labels(expression):
    exported = {**metrics.dispatcher_metric_names(), **PROMETHEUS_SERIES}
    selected, grouping = names_in(expression)
    assert selected, f"no metric in {expression!r}"
    for name, labels in selected.items():
        assert name in exported, f"{name} is not exported by dispatcher/metrics.py"
        assert labels <= exported[name] | TARGET_LABELS, f"{name} has no label {labels - exported[name]}"
    available = set().union(*(exported[name] for name in selected)) | TARGET_LABELS
    assert grouping <= available, f"{expression!r} groups by {grouping - available}, which its metrics do not carry"


def test_the_dashboard_covers_what_operators_asked_for():
    text = DASHBOARD.read_text()
    for metric in ("dispatcher_month_usage_seconds", "dispatcher_budget_used_ratio", "dispatcher_runs_claimed_total",
                   "dispatcher_runs_submitted_total", "dispatcher_runs_rejected_total", "dispatcher_claim_latency_seconds",
                   "dispatcher_submit_latency_seconds", "dispatcher_inflight_runs", "dispatcher_provider_calls_total",
                   "dispatcher_provider_errors_total", "dispatcher_provider_retries_total", "ThrottledError"):
        assert metric in text


def test_every_alert_has_a_summary_and_the_rules_cover_budgets_liveness_pending_and_providers():
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert all(rule["annotations"]["summary"] for rule in rules)
    names = {rule["alert"] for rule in rules}
    assert {"DispatcherDown", "DispatcherNotHeartbeating", "RunsStuckPending", "ProviderThrottling", "ProviderErrors",
            "ComputeBudgetAt80Percent", "ComputeBudgetExceeded"} <= names


def test_metric_names_follow_prometheus_conventions():
    for name in metrics.dispatcher_metric_names():
        assert re.fullmatch(r"dispatcher_[a-z_]+", name), name
        assert not re.search(r"_(minutes|milliseconds|ms|hours|bytes_mib)(_|$)", name), f"{name}: use base units"
    families = {f.name: f.type for f in metrics.REGISTRY.collect() if f.name.startswith("dispatcher_")}
    for name, kind in families.items():
        if kind == "gauge":
            assert not name.endswith("_total"), f"gauge {name} must not end in _total"
    for label in {label for labels in metrics.dispatcher_metric_names().values() for label in labels}:
        assert label not in {"flow_run_id", "attempt_id", "run", "flow_run", "infrastructure_id"}, "unbounded label"


def test_the_readme_lists_exactly_the_exported_metrics():
    section = (REPO_ROOT / "README.md").read_text().split("### Metrics", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(dispatcher_[a-z_]+)`", section))
    families = {f.name + ("_total" if f.type == "counter" else "") for f in metrics.REGISTRY.collect()
                if f.name.startswith("dispatcher_")}
    assert listed == families


def test_unbounded_state_names_are_counted_by_type():
    assert metrics.final_state_label("Completed") == "Completed"
    assert metrics.final_state_label("MyOwnFinalName", "COMPLETED") == "Completed"
