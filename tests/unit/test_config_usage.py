"""Configuration of budgets, API tokens and prices: one line per problem, tokens never echoed."""

from __future__ import annotations

import hashlib

import pytest

from dispatcher.config import load_config
from dispatcher.config.usage import BudgetMode, RunningRuns
from tests.unit.test_config_errors import VALID, problems_of, write

TOKEN = "t0ken-from-the-environment-123"


def with_api(**api: object) -> dict:
    return {**VALID, "api": api}


def test_tokens_from_the_environment_or_as_hashes_budgets_and_prices_load(tmp_path, monkeypatch):
    monkeypatch.setenv("USAGE_TOKEN", TOKEN)
    monkeypatch.setenv("METRICS_TOKEN", TOKEN + "-m")
    digest = hashlib.sha256(b"another-token-0123456789").hexdigest()
    path = write(tmp_path, {
        "workspaces": [{**VALID["workspaces"][0], "monthly_compute_minutes": 100, "ui_url": "https://ui.example.com",
                        "budget": {"mode": "hold", "running_runs": "stop", "alert_thresholds_pct": [100, 50]},
                        "pools": [{"name": "ecs-prod", "monthly_compute_minutes": 40}]}],
        "service": {"port": 0},
        "api": {"tokens": [{"name": "finance", "token": "${USAGE_TOKEN}", "workspaces": ["*"]},
                           {"name": "ops", "sha256": digest, "workspaces": ["analytics"], "role": "admin"}],
                "metrics_token": "${METRICS_TOKEN}"},
        "prices": {"currency": "EUR", "providers": {"ecs": {"vcpu_hour": 0.05, "memory_gib_hour": 0.005}}},
    })
    config = load_config(path)
    workspace = config.workspaces[0]
    assert (workspace.budget.mode, workspace.budget.running_runs) == (BudgetMode.HOLD, RunningRuns.STOP)
    assert workspace.budget.alert_thresholds_pct == [50, 100] and workspace.pools[0].monthly_compute_minutes == 40
    assert config.api.tokens[0].token.get_secret_value() == TOKEN and config.api.tokens[1].sha256 == digest
    assert config.prices.price_of("ecs").vcpu_hour == 0.05 and config.prices.price_of("aci").vcpu_hour > 0


def test_a_token_written_in_the_file_is_refused_and_not_shown(tmp_path):
    path = write(tmp_path, with_api(tokens=[{"name": "finance", "token": "literal-token-0123456789", "workspaces": ["*"]}],
                                    metrics_token="literal-metrics-0123456789"))
    problems = problems_of(path)
    assert problems == [
        f"{path}: api.tokens[0].token: must be a ${{VAR}} reference, not the token itself (anyone who reads the file "
        "could use it); or give its sha256 instead",
        f"{path}: api.metrics_token: must be a ${{VAR}} reference, not the token itself (anyone who reads the file "
        "could use it); or give its sha256 instead",
    ]
    assert "literal" not in "\n".join(problems)


@pytest.mark.parametrize(("token", "problem"), [
    ({"name": "a", "sha256": "abc", "workspaces": ["*"]}, "api.tokens[0].sha256: must be 64 hex characters"),
    ({"name": "a", "workspaces": ["*"]}, "api.tokens[0]: set token (a ${VAR} reference) or sha256, exactly one"),
    ({"name": "a", "sha256": "0" * 64, "workspaces": ["nowhere"]}, "api.tokens[0].workspaces[0]: unknown workspace 'nowhere'"),
    ({"name": "a", "sha256": "0" * 64, "workspaces": []}, "api.tokens[0].workspaces: must have at least 1 item"),
    ({"name": "a", "sha256": "0" * 64, "workspaces": ["*"], "role": "root"}, "api.tokens[0].role: must be 'read' or 'admin'"),
])
def test_token_problems_are_one_line_each(tmp_path, token, problem):
    path = write(tmp_path, with_api(tokens=[token]))
    [line] = problems_of(path)
    assert line.startswith(f"{path}: {problem}"), line


def test_a_short_token_and_repeated_names_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SHORT_TOKEN", "abc")
    path = write(tmp_path, with_api(tokens=[{"name": "a", "token": "${SHORT_TOKEN}", "workspaces": ["*"]},
                                            {"name": "a", "sha256": "0" * 64, "workspaces": ["*"]}]))
    problems = problems_of(path)
    assert problems == [
        f"{path}: api.tokens[0].token: must be at least 16 characters (e.g. `openssl rand -hex 32`)",
        f"{path}: api.tokens[1].name: token 'a' is already defined at api.tokens[0]; token names must be unique",
    ]


@pytest.mark.parametrize(("budget", "problem"), [
    ({"mode": "pause"}, "workspaces[0].budget.mode: must be 'reject' or 'hold'"),
    ({"running_runs": "kill"}, "workspaces[0].budget.running_runs: must be 'finish' or 'stop'"),
    ({"alert_thresholds_pct": [0, 80]}, "workspaces[0].budget.alert_thresholds_pct: each threshold must be a percentage"),
    ({"alert_thresholds_pct": [80, 80]}, "workspaces[0].budget.alert_thresholds_pct: thresholds must not repeat"),
])
def test_budget_policy_problems(tmp_path, budget, problem):
    path = write(tmp_path, {**VALID, "workspaces": [{**VALID["workspaces"][0], "budget": budget}]})
    [line] = problems_of(path)
    assert line.startswith(f"{path}: {problem}"), line


def test_price_problems(tmp_path):
    path = write(tmp_path, {**VALID, "prices": {"providers": {"ecs": {"vcpu_hour": -1, "memory_gib_hour": 0.1}}}})
    assert problems_of(path) == [f"{path}: prices.providers.ecs.vcpu_hour: must be greater than or equal to 0, got -1"]
