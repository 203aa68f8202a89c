"""``dispatcher check`` and ``serve``'s start-up failures against a real Prefect server.

Each failure is one line and an exit code (4 dependencies and pools, 5 the port),
never a traceback. A Prefect that refuses credentials is a small HTTP server
answering 401/403 to everything but /health, as Prefect does with an auth string.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import pytest
import yaml
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from sqlalchemy.engine import make_url

from dispatcher.cli import main
from dispatcher.demo.embedded import free_port
from dispatcher.prefect.pools import create_pool
from providers import CLOUDS, Cloud, registry

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_DSN = os.environ.get("CHECK_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SECRET = "user:hunter2-secret"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=180,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
    )


def write_config(tmp_path: Path, workspaces: list[dict], **extra: object) -> Path:
    config = {
        "workspaces": workspaces,
        "ledger_dsn": f"sqlite+aiosqlite:///{tmp_path / 'state' / 'ledger.db'}",
        "providers": {"local": {"state_dir": str(tmp_path / "runs")}},
        "service": {"port": 0, "log_level": "ERROR"},  # stderr: only the failure lines
        **extra,
    }
    path = tmp_path / "dispatcher.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def workspace(name: str, api_url: str, *pools: str, **auth: str) -> dict:
    return {"name": name, "api_url": api_url, "pools": [{"name": pool} for pool in pools], **auth}


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["check", "--config", str(path), "--timeout", "10"])
    out, err = capsys.readouterr()
    assert err == "" and "Traceback" not in out
    return code, out.splitlines()


@pytest.fixture(scope="module")
def refusing_prefect() -> Iterator[dict[int, str]]:
    """API URLs answering 401 and 403 to every API call; GET /api/health stays open."""

    def handler_for(status: int) -> type[BaseHTTPRequestHandler]:
        class Refuse(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                ok = self.path.endswith("/health")
                body = json.dumps(True if ok else {"exception_message": "Unauthorized"}).encode()
                self.send_response(200 if ok else status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        return Refuse

    servers = {status: ThreadingHTTPServer(("127.0.0.1", 0), handler_for(status)) for status in (401, 403)}
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {status: f"http://127.0.0.1:{server.server_address[1]}/api" for status, server in servers.items()}
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture
async def pools(prefect_api_url: str) -> dict[str, str]:
    """A local:push pool, a grid:push pool (a template-only cloud: its provider has not landed) and a process pool."""
    suffix = uuid.uuid4().hex[:8]
    names = {"local": f"local-{suffix}", "grid": f"grid-{suffix}", "process": f"proc-{suffix}"}
    await create_pool(prefect_api_url, names["local"], "local:push")
    async with PrefectClient(api=prefect_api_url) as client:  # Prefect accepts any type; pool create knows only ours
        await client.create_work_pool(WorkPoolCreate(name=names["grid"], type="grid:push"))
    async with PrefectClient(api=prefect_api_url) as client:
        await client.create_work_pool(WorkPoolCreate(name=names["process"], type="process"))
    return names


# -- dispatcher check ---------------------------------------------------------------------------


def test_check_passes_and_writes_nothing(prefect_api_url, pools, tmp_path):
    path = write_config(tmp_path, [workspace("analytics", prefect_api_url, pools["local"])])
    result = cli("check", "--config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert result.stdout.splitlines() == [
        f"ok    config {path}: 1 workspace(s), 1 pool(s)",
        f"ok    prefect[analytics] {prefect_api_url} reachable, authorised",
        f"ok    pool[analytics/{pools['local']}] local:push, provider local",
        f"ok    ledger sqlite+aiosqlite:///{tmp_path / 'state' / 'ledger.db'} does not exist yet; serve creates it",
        f"ok    provider[local] state_dir {tmp_path / 'runs'} does not exist yet; serve creates it",
        f"ok    provider[local] python {sys.executable} runs (Python {version})",
    ]
    assert not (tmp_path / "state").exists() and not (tmp_path / "runs").exists()


def test_check_reports_every_pool_problem(prefect_api_url, pools, tmp_path, capsys, monkeypatch):
    # The real clouds and one whose provider has not landed (all real ones have).
    monkeypatch.setattr(registry, "default", registry.Registry(
        [*CLOUDS, Cloud("grid", "tests.unit.registry_fakes:GridTemplateOnly", extra="grid")]))
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    names = [pools["local"], missing, pools["process"], pools["grid"]]
    path = write_config(tmp_path, [workspace("analytics", prefect_api_url, *names)])
    code, lines = check(path, capsys)
    assert code == 4
    assert lines[2:6] == [
        f"ok    pool[analytics/{pools['local']}] local:push, provider local",
        f"FAIL  pool[analytics/{missing}] not found on the server {prefect_api_url}; "
        f"create it with `dispatcher pool create {missing} --type <push type>`",
        f"FAIL  pool[analytics/{pools['process']}] has type 'process', not a push type; the dispatcher serves "
        "local:push, ecs:push, cloud-run-v2:push, azure-container-instance:push, grid:push, prefect:managed",
        f"FAIL  pool[analytics/{pools['grid']}] has type grid:push: provider 'grid' is not yet "
        "available (only its pool template has landed); serve can run pools of providers local, ecs, cloud-run, aci "
        "(pool create works for every type)",
    ]


def test_check_reports_unreachable_and_refusing_prefects_without_secrets(refusing_prefect, tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setenv("H6_AUTH", SECRET)
    closed = f"http://127.0.0.1:{free_port()}/api"
    path = write_config(tmp_path, [
        workspace("down", closed, "p"),
        workspace("basic", refusing_prefect[401], "p", auth_string="${H6_AUTH}"),
        workspace("cloud", refusing_prefect[403], "p", api_key="${H6_AUTH}"),
    ])
    code, lines = check(path, capsys)
    assert code == 4
    assert lines[1:7] == [
        f"FAIL  prefect[down] {closed} unreachable: ConnectError: All connection attempts failed",
        "skip  pool[down/p] not checked: prefect[down] failed",
        f"FAIL  prefect[basic] {refusing_prefect[401]} refuses our credentials (401 Unauthorized); "
        "check the workspace's api_key or auth_string",
        "skip  pool[basic/p] not checked: prefect[basic] failed",
        f"FAIL  prefect[cloud] {refusing_prefect[403]} refuses our credentials (403 Forbidden); "
        "check the workspace's api_key or auth_string",
        "skip  pool[cloud/p] not checked: prefect[cloud] failed",
    ]
    assert "hunter2" not in "\n".join(lines)


def test_check_reports_an_unreachable_ledger(prefect_api_url, pools, tmp_path, capsys):
    port = free_port()
    path = write_config(tmp_path, [workspace("analytics", prefect_api_url, pools["local"])],
                        ledger_dsn=f"postgresql+asyncpg://dispatcher:hunter2@127.0.0.1:{port}/ledger")
    code, lines = check(path, capsys)
    assert code == 4
    [ledger] = [line for line in lines if "ledger" in line]
    assert ledger.startswith(f"FAIL  ledger postgresql+asyncpg://dispatcher:***@127.0.0.1:{port}/ledger unreachable: "
                             "ConnectionRefusedError: ")
    assert "hunter2" not in "\n".join(lines)


def test_check_reaches_postgresql_without_migrating_it(prefect_api_url, pools, tmp_path, capsys):
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 5432)) != 0:
            pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432 (set CHECK_TEST_POSTGRES to use another)")
    path = write_config(tmp_path, [workspace("analytics", prefect_api_url, pools["local"])], ledger_dsn=PG_DSN)
    tables_before = asyncio.run(ledger_tables())
    code, lines = check(path, capsys)
    [ledger] = [line for line in lines if "ledger" in line]
    assert code == 0, lines
    if "alembic_version" in tables_before:
        assert re.fullmatch(r"ok    ledger postgresql\+asyncpg://postgres@127\.0\.0\.1:5432/test reachable, "
                            r"schema revision \w+ \((current|serve migrates it to \w+)\)", ledger), ledger
    else:
        assert ledger == ("ok    ledger postgresql+asyncpg://postgres@127.0.0.1:5432/test reachable, "
                          "no schema yet (serve creates it)")
    assert asyncio.run(ledger_tables()) == tables_before  # nothing migrated


async def ledger_tables() -> set[str]:
    connection = await asyncpg.connect(make_url(PG_DSN).set(drivername="postgresql").render_as_string(False))
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows}


# -- serve's start-up failures (subprocesses: what an operator's terminal shows) -------------------


def assert_one_line_failure(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    return line


def test_serve_exits_4_on_an_unknown_pool(prefect_api_url, pools, tmp_path):
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    path = write_config(tmp_path, [workspace("analytics", prefect_api_url, pools["local"], missing)])
    line = assert_one_line_failure(cli("serve", "--config", str(path)), 4)
    assert line == (f"pool[analytics/{missing}] not found on the server {prefect_api_url}; "
                    f"create it with `dispatcher pool create {missing} --type <push type>`")


def test_serve_exits_4_on_a_pool_that_is_not_a_push_type(prefect_api_url, pools, tmp_path):
    path = write_config(tmp_path, [workspace("analytics", prefect_api_url, pools["process"])])
    line = assert_one_line_failure(cli("serve", "--config", str(path)), 4)
    assert line.startswith(f"pool[analytics/{pools['process']}] has type 'process', not a push type")


def test_serve_waits_for_unreachable_prefect_then_exits_4(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}/api"
    path = write_config(tmp_path, [workspace("analytics", closed, "p")],
                        service={"port": 0, "log_level": "ERROR", "startup_timeout_s": 1})
    line = assert_one_line_failure(cli("serve", "--config", str(path)), 4)
    assert line == f"prefect[analytics] {closed} unreachable for 1 s: ConnectError: All connection attempts failed"


def test_serve_exits_4_at_once_when_prefect_refuses_credentials(refusing_prefect, tmp_path):
    # A 10-minute start-up wait: were a refusal waited for, the subprocess would time out.
    path = write_config(tmp_path, [workspace("analytics", refusing_prefect[401], "p", auth_string="${H6_AUTH}")],
                        service={"port": 0, "log_level": "ERROR", "startup_timeout_s": 600})
    line = assert_one_line_failure(cli("serve", "--config", str(path), env={"H6_AUTH": SECRET}), 4)
    assert line == (f"prefect[analytics] {refusing_prefect[401]} refuses our credentials (401 Unauthorized); "
                    "check the workspace's api_key or auth_string")


def test_serve_exits_4_when_the_ledger_is_unreachable(prefect_api_url, pools, tmp_path):
    port = free_port()
    path = write_config(tmp_path, [workspace("analytics", prefect_api_url, pools["local"])],
                        ledger_dsn=f"postgresql+asyncpg://dispatcher:hunter2@127.0.0.1:{port}/ledger")
    line = assert_one_line_failure(cli("serve", "--config", str(path)), 4)
    assert line.startswith(f"ledger postgresql+asyncpg://dispatcher:***@127.0.0.1:{port}/ledger unreachable: "
                           "ConnectionRefusedError: ")


def test_serve_exits_5_when_its_port_is_taken(prefect_api_url, pools, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(tmp_path, [workspace("analytics", prefect_api_url, pools["local"])],
                            service={"host": "127.0.0.1", "port": port, "log_level": "ERROR"})
        line = assert_one_line_failure(cli("serve", "--config", str(path)), 5)
    assert line == f"service.port: cannot listen on 127.0.0.1:{port}: address already in use"
