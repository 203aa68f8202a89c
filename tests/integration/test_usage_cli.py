"""``dispatcher usage`` with the API's groupings, as a table, JSON and CSV (in-process, on a known ledger)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from dispatcher.cli import main
from dispatcher.ledger import Ledger
from tests.postgres import in_own_loop
from tests.usage_data import IN_FLIGHT_MINUTES, NOW, USED_MINUTES, seed


async def _seeded(dsn: str) -> None:
    ledger = await Ledger.open(dsn)
    try:
        await seed(ledger)
    finally:
        await ledger.close()


@pytest.fixture
def dsn(tmp_path, monkeypatch) -> str:
    """Sync tests: the CLI runs its own event loop."""
    monkeypatch.setattr("dispatcher.ledger.report.utcnow", lambda: NOW)
    dsn = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    in_own_loop(_seeded(dsn))
    return dsn


def run(capsys, *args: str) -> str:
    assert main(["usage", *args]) == 0
    return capsys.readouterr().out


def test_by_pool_as_json_is_the_apis_report(dsn, capsys):
    [report] = json.loads(run(capsys, "--ledger", dsn, "--by", "pool", "--json"))
    assert (report["workspace"], report["month"], report["total"]["used_minutes"]) == ("acme", "2026-11", USED_MINUTES)
    assert {g["key"]: g["used_minutes"] for g in report["groups"]} == {"ml": 98, "etl": 87 + IN_FLIGHT_MINUTES}


def test_by_deployment_as_csv(dsn, capsys):
    rows = list(csv.DictReader(io.StringIO(run(capsys, "--ledger", dsn, "--by", "deployment", "--csv"))))
    assert {r["group"]: int(r["used_min"]) for r in rows} == {
        "train/train": 90, "sync/hourly": 45 + IN_FLIGHT_MINUTES, "load/nightly": 42, "unknown/unknown": 8}
    assert rows[0]["cost"] != "" and rows[-1]["cost"] == ""  # the row from before 0003 is not priced


def test_by_day_as_a_table_and_the_monthly_summary_as_csv(dsn, capsys):
    lines = run(capsys, "--ledger", dsn, "--by", "day", "--month", "2026-11").splitlines()
    assert lines[0].split()[:4] == ["WORKSPACE", "MONTH", "GROUP", "USED"]
    assert [line.split()[2:4] for line in lines[2:]] == [["2026-11-03", "42"], ["2026-11-11", "135"],
                                                        ["2026-11-19", "8"], ["2026-11-20", str(IN_FLIGHT_MINUTES)]]
    summary = list(csv.DictReader(io.StringIO(run(capsys, "--ledger", dsn, "--csv"))))
    assert [(r["workspace"], r["month"], r["billed_minutes"]) for r in summary] == [("acme", "2026-11", "185")]


def test_a_malformed_month_is_a_usage_error(capsys):
    assert main(["usage", "--ledger", "sqlite+aiosqlite:///:memory:", "--by", "pool", "--month", "11-2026"]) == 2
    assert "YYYY-MM" in capsys.readouterr().err
