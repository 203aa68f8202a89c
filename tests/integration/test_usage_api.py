"""The usage API over HTTP (in-process ASGI) on a ledger with a known month: figures, runs, budgets, CSV, tokens."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from dispatcher.health import HealthReport
from dispatcher.web.app import build_app
from tests.usage_data import (
    ADMIN_TOKEN,
    BUDGET_MINUTES,
    IN_FLIGHT_MINUTES,
    METRICS_TOKEN,
    OTHER_TOKEN,
    PREFECT_KEY,
    READ_TOKEN,
    USED_MINUTES,
    seeded_context,
)

SECRETS = (READ_TOKEN, ADMIN_TOKEN, METRICS_TOKEN, OTHER_TOKEN, PREFECT_KEY)


@pytest.fixture
async def api(tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    async with seeded_context(tmp_path) as context:
        app = build_app(lambda: HealthReport(status="ready"), lambda: True, context)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dispatcher") as client:
            yield client


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_usage_grouped_by_pool_counts_billed_and_in_flight_minutes_and_estimates_cost(api):
    response = await api.get("/api/v1/workspaces/acme/usage", params={"month": "2026-11"}, headers=as_(READ_TOKEN))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["total"]["used_minutes"] == USED_MINUTES
    assert report["total"]["in_flight_minutes"] == IN_FLIGHT_MINUTES
    assert report["total"]["unpriced_attempts"] == 1  # the row from before 0003
    pools = {g["key"]: g for g in report["groups"]}
    assert pools["ml"]["used_minutes"] == 98 and pools["etl"]["used_minutes"] == 30 + 12 + 45 + IN_FLIGHT_MINUTES
    # Fargate list prices: 90 min x (4 vCPU x 0.04048 + 16 GiB x 0.004445) per hour
    assert pools["ml"]["estimated_cost"] == pytest.approx(1.5 * (4 * 0.04048 + 16 * 0.004445), abs=1e-3)
    assert report["currency"] == "USD"


@pytest.mark.parametrize(("group_by", "expected"), [
    ("deployment", {"d-nightly": 42, "d-hourly": 45 + IN_FLIGHT_MINUTES, "d-train": 90, "unknown": 8}),
    ("flow", {"load": 42, "sync": 45 + IN_FLIGHT_MINUTES, "train": 90, "unknown": 8}),
    ("provider", {"ecs": USED_MINUTES}),
    ("day", {"2026-11-03": 42, "2026-11-11": 135, "2026-11-19": 8, "2026-11-20": IN_FLIGHT_MINUTES}),
])
async def test_every_grouping_adds_up_to_the_month(api, group_by, expected):
    response = await api.get("/api/v1/workspaces/acme/usage", params={"month": "2026-11", "group_by": group_by},
                             headers=as_(READ_TOKEN))
    assert {g["key"]: g["used_minutes"] for g in response.json()["groups"]} == expected


async def test_the_runs_behind_a_figure_are_paginated_with_links_to_prefect(api):
    first = (await api.get("/api/v1/workspaces/acme/runs", params={"month": "2026-11", "pool": "etl", "page_size": 2},
                           headers=as_(READ_TOKEN))).json()
    assert (first["total"], first["pages"], len(first["items"])) == (4, 2, 2)
    second = (await api.get("/api/v1/workspaces/acme/runs",
                            params={"month": "2026-11", "pool": "etl", "page_size": 2, "page": 2},
                            headers=as_(READ_TOKEN))).json()
    items = first["items"] + second["items"]
    # In flight first, then the newest teardown (two ended at the same moment: by attempt id).
    assert [item["minutes"] for item in items] == [IN_FLIGHT_MINUTES, 45, 30, 12]
    assert items[0]["in_flight"] and items[0]["stopped_at"] is None
    assert items[1]["ui_url"] == f"http://prefect.internal:4200/runs/flow-run/{items[1]['flow_run_id']}"
    assert items[1]["infrastructure_id"].startswith("arn:task/") and items[1]["final_state"] == "Completed"
    unknown = (await api.get("/api/v1/workspaces/acme/runs", params={"month": "2026-11", "deployment": "unknown"},
                             headers=as_(READ_TOKEN))).json()
    assert [item["minutes"] for item in unknown["items"]] == [8]


async def test_budget_status_and_a_months_budget_set_by_an_admin(api, caplog):
    budget = (await api.get("/api/v1/workspaces/acme/budget", params={"month": "2026-11"}, headers=as_(READ_TOKEN))).json()
    views = {b["pool"]: b for b in budget["budgets"]}
    assert (views[None]["used_minutes"], views[None]["budget_minutes"], views[None]["status"]) == (
        USED_MINUTES, BUDGET_MINUTES, "exceeded")
    assert (views["ml"]["used_minutes"], views["ml"]["status"]) == (98, "warning")
    assert (await api.put("/api/v1/workspaces/acme/budget/2026-11", json={"monthly_compute_minutes": 500},
                          headers=as_(READ_TOKEN))).status_code == 403
    with caplog.at_level(logging.DEBUG):
        raised = await api.put("/api/v1/workspaces/acme/budget/2026-11", json={"monthly_compute_minutes": 500},
                               headers=as_(ADMIN_TOKEN))
    assert raised.status_code == 200
    workspace = next(b for b in raised.json()["budgets"] if b["pool"] is None)
    assert (workspace["budget_minutes"], workspace["status"], workspace["overridden"]) == (500, "ok", True)
    assert "by token 'platform'" in caplog.text and ADMIN_TOKEN not in caplog.text


async def test_csv_export_has_one_line_per_metered_attempt(api):
    response = await api.get("/api/v1/workspaces/acme/usage.csv", params={"month": "2026-11"}, headers=as_(READ_TOKEN))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(int(r["billed_minutes"]) for r in rows) == sorted([30, 12, 45, 90, 8])
    assert {r["estimated_cost"] == "" for r in rows if r["deployment_id"] == ""} == {True}


@pytest.mark.parametrize(("path", "token", "status"), [
    ("/api/v1/workspaces/acme/usage", None, 401),
    ("/api/v1/workspaces/acme/usage", "not-a-configured-token-000", 401),
    ("/api/v1/workspaces/acme/usage", OTHER_TOKEN, 403),
    ("/api/v1/workspaces/nowhere/usage", READ_TOKEN, 403),
    ("/api/v1/workspaces/nowhere/usage", ADMIN_TOKEN, 404),
    ("/api/v1/workspaces/acme/usage.csv", OTHER_TOKEN, 403),
    ("/metrics", None, 401),
    ("/metrics", READ_TOKEN, 401),
])
async def test_401_and_403_are_distinct_and_plain(api, path, token, status):
    response = await api.get(path, headers=as_(token) if token else {})
    assert response.status_code == status
    assert not any(secret in response.text for secret in SECRETS)
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


async def test_health_stays_open_and_metrics_open_to_their_token(api):
    for path in ("/healthz", "/livez", "/readyz"):
        assert (await api.get(path)).status_code == 200
    assert (await api.get("/metrics", headers=as_(METRICS_TOKEN))).status_code == 200


async def test_the_token_lists_only_its_workspaces(api):
    names = [w["name"] for w in (await api.get("/api/v1/workspaces", headers=as_(READ_TOKEN))).json()]
    assert names == ["acme"]
    every = (await api.get("/api/v1/workspaces", headers=as_(ADMIN_TOKEN))).json()
    assert [w["ui_url"] for w in every] == ["http://prefect.internal:4200", "https://app.prefect.cloud/account/a1/workspace/w1"]
