"""Pure parts of usage reading: UI links, costs, the chart, CSV cells, run facts, event delivery backoff, tokens."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from uuid import uuid4

import pytest
from fastapi import HTTPException
from prefect.client.schemas.objects import FlowRun
from prefect.workers.base import BaseJobConfiguration
from pydantic import SecretStr

from dispatcher.config import PoolConfig, WorkspaceConfig
from dispatcher.config.usage import ApiConfig, ApiRole, ApiToken, PriceTable, ProviderPrice
from dispatcher.usage.costs import cost, flow_run_url, ui_base_url
from dispatcher.usage.delivery import retry_delay
from dispatcher.usage.facts import run_facts
from dispatcher.usage.models import UsageGroup
from dispatcher.usage.report import _cell
from dispatcher.web.auth import TokenBook
from dispatcher.web.chart import daily_chart
from providers.base import ResourceRequest


def workspace(api_url: str, ui_url: str | None = None) -> WorkspaceConfig:
    return WorkspaceConfig(name="w", api_url=api_url, ui_url=ui_url, pools=[PoolConfig(name="p")])


@pytest.mark.parametrize(("api_url", "ui_url", "expected"), [
    ("http://prefect:4200/api", None, "http://prefect:4200"),
    ("https://prefect.example.com/prefect/api/", None, "https://prefect.example.com/prefect"),
    ("https://api.prefect.cloud/api/accounts/acc-1/workspaces/ws-2", None, "https://app.prefect.cloud/account/acc-1/workspace/ws-2"),
    ("http://prefect:4200/api", "https://ui.example.com/", "https://ui.example.com"),
])
def test_the_ui_url_is_derived_from_the_api_url_unless_set(api_url, ui_url, expected):
    assert ui_base_url(workspace(api_url, ui_url)) == expected
    assert flow_run_url(expected, "abc") == f"{expected}/runs/flow-run/abc"


def test_cost_is_vcpu_and_memory_time_at_the_providers_price():
    prices = PriceTable(providers={"ecs": ProviderPrice(vcpu_hour=0.1, memory_gib_hour=0.01)})
    assert cost(prices, "ecs", vcpu_seconds=2 * 3600, memory_gib_seconds=4 * 3600) == pytest.approx(0.24)
    assert cost(prices, "cloud-run", 3600, 0) == pytest.approx(0.0648)  # the documented default
    assert cost(prices, "local", 3600, 3600) == 0.0
    assert cost(prices, "unheard-of", 3600, 3600) is None


def test_the_chart_has_a_bar_per_day_scaled_to_the_busiest():
    days = [UsageGroup(key="2026-02-03", label="", used_minutes=10), UsageGroup(key="2026-02-28", label="", used_minutes=40)]
    chart = daily_chart("2026-02", days)
    assert len(chart.bars) == 28 and chart.max_minutes == 40
    tallest, small = chart.bars[27], chart.bars[2]
    assert tallest.height == pytest.approx(4 * small.height) and tallest.y + tallest.height == chart.baseline
    assert all(bar.height == 0 for bar in chart.bars if bar.minutes == 0)
    assert daily_chart("2026-02", []).max_minutes == 0


@pytest.mark.parametrize(("value", "cell"), [("=HYPERLINK(1)", "'=HYPERLINK(1)"), ("@sum", "'@sum"), ("-3", "-3"),
                                             ("brave-fox", "brave-fox"), (None, ""), (2.5, "2.5")])
def test_csv_cells_a_spreadsheet_would_run_are_quoted(value, cell):
    assert _cell(value) == cell


def test_run_facts_come_from_prefects_labels_and_the_providers_resources():
    deployment_id = uuid4()
    flow_run = FlowRun(id=uuid4(), name="brave-fox", flow_id=uuid4(), deployment_id=deployment_id)
    configuration = BaseJobConfiguration(labels={"prefect.io/deployment-name": "nightly", "prefect.io/flow-name": "etl",
                                                 "prefect.io/flow-run-name": "brave-fox"})
    facts = run_facts(flow_run, configuration, ResourceRequest(vcpu=0.5, memory_mib=1024))
    assert facts.model_dump() == {"deployment_id": str(deployment_id), "deployment_name": "nightly", "flow_name": "etl",
                                  "flow_run_name": "brave-fox", "vcpu": 0.5, "memory_mib": 1024}
    bare = run_facts(FlowRun(id=uuid4(), name="x", flow_id=uuid4()), BaseJobConfiguration(), ResourceRequest())
    assert (bare.deployment_id, bare.flow_name, bare.flow_run_name, bare.vcpu) == (None, None, "x", None)


def test_event_delivery_backs_off_to_five_minutes():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert retry_delay(50) == timedelta(minutes=5)


def test_tokens_are_found_by_hash_and_scoped_to_workspaces_and_roles():
    admin = "admin-" + "a" * 20
    book = TokenBook(ApiConfig(tokens=[
        ApiToken(name="reader", token=SecretStr("reader-" + "r" * 20), workspaces=["w"]),
        ApiToken(name="admin", sha256=hashlib.sha256(admin.encode()).hexdigest().upper(), workspaces=["*"],
                 role=ApiRole.ADMIN),
    ]))
    assert book.identify("reader-" + "r" * 20).name == "reader"
    assert book.identify(admin).name == "admin"
    assert book.identify("") is None and book.identify(None) is None and book.identify("reader-") is None
    assert book.authorise(admin, "anything", ApiRole.ADMIN).name == "admin"
    for presented, workspace, role, status in ((None, "w", ApiRole.READ, 401), ("nope" * 5, "w", ApiRole.READ, 401),
                                               ("reader-" + "r" * 20, "v", ApiRole.READ, 403),
                                               ("reader-" + "r" * 20, "w", ApiRole.ADMIN, 403)):
        with pytest.raises(HTTPException) as refused:
            book.authorise(presented, workspace, role)
        assert refused.value.status_code == status
        assert presented is None or presented not in str(refused.value.detail)
