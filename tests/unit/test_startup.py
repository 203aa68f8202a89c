"""Start-up failures: the service port, waiting for Prefect, pools, the ledger probe; one line each."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from prefect.exceptions import ObjectNotFound

from dispatcher import cli
from dispatcher.config import PoolConfig, WorkspaceConfig
from dispatcher.demo.embedded import free_port
from dispatcher.ledger import Ledger
from dispatcher.startup.probes import PrefectUnreachable, probe_ledger
from dispatcher.startup.preflight import bind_service_socket, read_push_pool, served_provider_kind, wait_for_prefect
from dispatcher.startup.errors import StartupError, safe_url

WS = WorkspaceConfig(name="analytics", api_url="http://prefect:4200/api", pools=[PoolConfig(name="p")])


def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


# -- the service port ---------------------------------------------------------------------------


def test_the_service_socket_is_bound_and_listening_before_anything_starts():
    assert bind_service_socket("127.0.0.1", 0) is None  # port 0: no HTTP endpoint
    sock = bind_service_socket("127.0.0.1", free_port())
    try:
        with socket.create_connection(sock.getsockname(), timeout=5):
            pass  # accepted by the backlog: it listens
    finally:
        sock.close()


def test_a_port_in_use_is_exit_5_with_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError) as caught:
            bind_service_socket("127.0.0.1", port)
    assert caught.value.exit_code == 5
    assert caught.value.lines == [f"service.port: cannot listen on 127.0.0.1:{port}: address already in use"]


def test_an_unknown_host_is_exit_5():
    with pytest.raises(StartupError) as caught:
        bind_service_socket("no-such-host.invalid", 8080)
    assert caught.value.exit_code == 5
    assert caught.value.lines[0].startswith("service.host: cannot listen on no-such-host.invalid:8080: ")


def test_serve_exits_5_when_its_port_is_taken(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "configure_logging", lambda *a: None)  # keep the test session's logging
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "d.yaml"
        path.write_text(f"workspaces: [{{name: w, api_url: 'http://127.0.0.1:1/api', pools: [{{name: p}}]}}]\n"
                        f"service: {{host: 127.0.0.1, port: {port}}}\n")
        assert cli.main(["serve", "--config", str(path)]) == 5
    err = capsys.readouterr().err
    assert err.splitlines() == [f"service.port: cannot listen on 127.0.0.1:{port}: address already in use"]


# -- waiting for Prefect (a fake clock: no real waiting, no timing luck) ------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def probe_failing(times: int, error: StartupError):
    calls = []

    async def probe(ws: WorkspaceConfig, timeout_s: float) -> None:
        calls.append(timeout_s)
        if len(calls) <= times:
            raise error

    return probe, calls


async def test_unreachable_prefect_is_retried_until_it_answers():
    clock = FakeClock()
    probe, calls = probe_failing(3, PrefectUnreachable("prefect[analytics] http://prefect:4200/api", "ConnectError: x"))
    await wait_for_prefect(WS, 60, probe=probe, sleep=clock.sleep, clock=clock)
    assert len(calls) == 4 and clock.sleeps == [0.5, 1.0, 2.0]


async def test_unreachable_prefect_exits_after_the_startup_timeout_naming_url_and_error_class():
    clock = FakeClock()
    probe, calls = probe_failing(1000, PrefectUnreachable("prefect[analytics] http://prefect:4200/api",
                                                          "ConnectError: All connection attempts failed"))
    with pytest.raises(StartupError) as caught:
        await wait_for_prefect(WS, 20, probe=probe, sleep=clock.sleep, clock=clock)
    assert caught.value.exit_code == 4
    assert caught.value.lines == ["prefect[analytics] http://prefect:4200/api unreachable for 20 s: "
                                  "ConnectError: All connection attempts failed"]
    # Backs off (capped at 5 s) and makes its last attempt at the deadline, not past it.
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 2.5] and clock.now == 20
    assert calls[-1] == 1.0  # even the last attempt gets a useful timeout


async def test_a_refusal_is_not_waited_for():
    clock = FakeClock()
    probe, calls = probe_failing(1000, StartupError("prefect[analytics] ... refuses our credentials (401 Unauthorized)"))
    with pytest.raises(StartupError, match="401"):
        await wait_for_prefect(WS, 60, probe=probe, sleep=clock.sleep, clock=clock)
    assert len(calls) == 1 and clock.sleeps == []


# -- pools ------------------------------------------------------------------------------------------


class FakeApi:
    def __init__(self, pools: dict[str, str]) -> None:
        self.pools = pools

    async def read_pool(self, name: str) -> SimpleNamespace:
        if name not in self.pools:
            raise ObjectNotFound(http_exc=Exception("404"))
        return SimpleNamespace(name=name, type=self.pools[name])


async def test_unknown_and_non_push_pools_are_start_up_errors():
    api = FakeApi({"proc": "process"})
    with pytest.raises(StartupError) as missing:
        await read_push_pool(api, WS, "nope")
    assert missing.value.lines == ["pool[analytics/nope] not found on the server http://prefect:4200/api; "
                                   "create it with `dispatcher pool create nope --type <push type>`"]
    with pytest.raises(StartupError) as process:
        await read_push_pool(api, WS, "proc")
    assert process.value.lines == ["pool[analytics/proc] has type 'process', not a push type; the dispatcher serves "
                                   "local:push, ecs:push, cloud-run-v2:push, azure-container-instance:push, "
                                   "prefect:managed"]


def test_the_pool_type_picks_the_provider():
    """(Pools of a cloud whose provider has not landed are refused: test_registry, with a template-only cloud.)"""
    pool = PoolConfig(name="run")
    assert served_provider_kind(WS, pool, SimpleNamespace(type="local:push"), "local") == "local"
    assert served_provider_kind(WS, pool, SimpleNamespace(type="prefect:managed"), "ecs") == "ecs"
    assert served_provider_kind(WS, pool, SimpleNamespace(type="azure-container-instance:push"), "local") == "aci"
    assert served_provider_kind(WS, pool, SimpleNamespace(type="cloud-run-v2:push"), "local") == "cloud-run"


def test_urls_lose_their_password():
    assert safe_url("http://u:hunter2@prefect:4200/api") == "http://u:<hidden>@prefect:4200/api"
    assert safe_url("http://prefect:4200/api") == "http://prefect:4200/api"


# -- the ledger probe writes nothing ---------------------------------------------------------------


async def test_ledger_probe_on_sqlite_reads_without_creating_anything(tmp_path: Path):
    path = tmp_path / "state" / "ledger.db"
    dsn = f"sqlite+aiosqlite:///{path}"
    assert await probe_ledger(dsn) == f"ledger {dsn} does not exist yet; serve creates it"
    assert not path.parent.exists()
    await (await Ledger.open(dsn)).close()
    assert await probe_ledger(dsn) == f"ledger {dsn} reachable, schema revision 0005 (current)"


async def test_ledger_probe_names_the_error_class_and_hides_the_password():
    port = closed_port()
    with pytest.raises(StartupError) as caught:
        await probe_ledger(f"postgresql+asyncpg://dispatcher:hunter2@127.0.0.1:{port}/ledger", timeout_s=5)
    [line] = caught.value.lines
    assert line.startswith(f"ledger postgresql+asyncpg://dispatcher:***@127.0.0.1:{port}/ledger unreachable: "
                           "ConnectionRefusedError: ")
    assert "hunter2" not in line and caught.value.exit_code == 4
