"""Debian's Prometheus against a live dispatcher: the shipped rules pass ``promtool check rules`` and load,
Prometheus scrapes /metrics with the metrics token, and a dashboard query returns what the ledger holds."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import SecretStr

from dispatcher.clock import utcnow
from dispatcher.config import LoopConfig, ServiceConfig
from dispatcher.config.usage import ApiConfig
from dispatcher.demo.embedded import free_port
from dispatcher.ledger import AttemptRef, Ledger
from tests.conftest import dispatcher_config, running_dispatcher

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "monitoring" / "prometheus" / "dispatcher-alerts.yml"
DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "prefect-push-dispatcher.json"
PROMETHEUS, PROMTOOL = Path("/usr/bin/prometheus"), Path("/usr/bin/promtool")
METRICS_TOKEN = "scrape-token-0123456789abcdef"
needs_prometheus = pytest.mark.skipif(not (PROMETHEUS.exists() and PROMTOOL.exists()),
                                      reason="Debian's prometheus package is not installed (`make setup` installs it as root)")


@needs_prometheus
def test_promtool_accepts_the_rules():
    result = subprocess.run([str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


@needs_prometheus
async def test_a_dashboard_query_returns_the_budget_ratio_the_ledger_holds(prefect_api_url, local_pool, tmp_path):
    port = free_port()
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path, loop=LoopConfig(
        poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=15, budget_interval_s=0.5))
    config.workspaces[0].monthly_compute_minutes = 120
    config.service = ServiceConfig(host="127.0.0.1", port=port)
    config.api = ApiConfig(metrics_token=SecretStr(METRICS_TOKEN))
    await _metered(config.ledger_dsn, local_pool, minutes=30)  # 30 of 120: 0.25
    async with running_dispatcher(config):
        with _prometheus(tmp_path, port) as query:
            expression = _panel_expression("Budget used").replace("$workspace", "test")
            values = await _wait_for(query, expression, lambda result: len(result) == 1)
            assert float(values[0]["value"][1]) == pytest.approx(0.25)
            assert values[0]["metric"] == {"workspace": "test"}  # pool "" (the workspace's budget): no label
            [up] = await _wait_for(query, 'up{job="prefect-push-dispatcher"}', lambda result: len(result) == 1)
            assert up["value"][1] == "1"  # scraped with the metrics token
            rules = await query("rules")
            assert {group["name"] for group in rules["groups"]} >= {"prefect-push-dispatcher-budgets"}


async def _metered(dsn: str, pool: str, minutes: int) -> None:
    ledger = await Ledger.open(dsn)
    try:
        attempt = AttemptRef(flow_run_id="earlier", attempt_id="earlier")
        stop = utcnow()
        await ledger.record_submission(attempt, "pid", stop, workspace="test", pool=pool, provider="local")
        await ledger.meter(attempt.attempt_id, stop - timedelta(minutes=minutes), stop)
    finally:
        await ledger.close()


def _panel_expression(title: str) -> str:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return next(p for p in panels if p["title"] == title)["targets"][0]["expr"]


class _prometheus:
    """Prometheus on a loopback port scraping the dispatcher every second; ``query(expr)`` or ``query('rules')``."""

    def __init__(self, tmp_path: Path, dispatcher_port: int) -> None:
        self.port = free_port()
        token_file = tmp_path / "metrics-token"
        token_file.write_text(METRICS_TOKEN)
        self.config = tmp_path / "prometheus.yml"
        self.config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "prefect-push-dispatcher",
                                "authorization": {"credentials_file": str(token_file)},
                                "static_configs": [{"targets": [f"127.0.0.1:{dispatcher_port}"]}]}],
        }))
        self.data = tmp_path / "prometheus-data"
        self.log = tmp_path / "prometheus.log"

    def __enter__(self):
        self.process = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={self.config}", f"--storage.tsdb.path={self.data}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        return self.query

    def __exit__(self, *_exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def query(self, expression: str) -> dict | list:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}/api/v1", timeout=5) as client:
            for _ in range(100):  # until Prometheus answers (it starts in about a second)
                try:
                    response = await (client.get("/rules") if expression == "rules" else
                                      client.get("/query", params={"query": expression}))
                    break
                except httpx.TransportError:
                    assert self.process.poll() is None, self.log.read_text()[-2000:]
                    await asyncio.sleep(0.2)
            response.raise_for_status()
            data = response.json()["data"]
            return data if expression == "rules" else data["result"]


async def _wait_for(query, expression: str, done, timeout_s: float = 30) -> list:
    result: list = []
    for _ in range(int(timeout_s / 0.25)):
        result = await query(expression)
        if done(result):
            return result
        await asyncio.sleep(0.25)
    raise TimeoutError(f"{expression!r} gave {result}")
