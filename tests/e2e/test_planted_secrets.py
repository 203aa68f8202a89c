"""Planted secrets: a run prints every secret it was given and crashes; none of them is kept anywhere.

Through a real Prefect server and the real dispatcher on the local provider. The secrets
are the workspace's API key, a Secret block and a Prefect variable referenced from the
deployment's env, and a plain env variable named like a password.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
import uuid
from pathlib import Path

import pytest
from prefect.blocks.system import Secret
from prefect.client.schemas.actions import VariableCreate
from prometheus_client import generate_latest
from pydantic import SecretStr

from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import Ledger
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import is_final, wait_until

pytestmark = pytest.mark.e2e

# Prints its secret env values among lines that are not secret, then dies without a final state.
# With RELEASE_FILE set, it first waits for that file to exist.
CRASHING_SCRIPT = """
import os, sys, time
print("visible: the flow starts", flush=True)
while os.environ.get("RELEASE_FILE") and not os.path.exists(os.environ["RELEASE_FILE"]):
    time.sleep(0.05)
for name in ("PREFECT_API_KEY", "BLOCK_SECRET", "DB_PASSWORD", "FROM_VARIABLE"):
    print(name, "is", os.environ[name], "!", flush=True)
print("visible: the flow crashes now", flush=True)
sys.exit(3)
"""


def files_containing(root: Path, values: list[str]) -> list[str]:
    """Every file below ``root`` whose bytes contain one of ``values`` (UTF-8), with the value's name."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {value[:12]}..." for value in values if value.encode() in data]
    return found


async def _planted_run(client, pool: str, planted: dict[str, str], release_file: Path | None = None):
    suffix = uuid.uuid4().hex[:8]
    await Secret(value=planted["block"]).save(f"planted-{suffix}", client=client)
    await client.create_variable(VariableCreate(name=f"planted_{suffix}", value=planted["variable"]))
    deployment_id = await deploy_example(client, "hello", pool, job_variables={
        "command": f"{shlex.quote(sys.executable)} -c {shlex.quote(CRASHING_SCRIPT)}",
        "env": {
            "BLOCK_SECRET": "{{ prefect.blocks.secret.planted-%s }}" % suffix,
            "FROM_VARIABLE": "{{ prefect.variables.planted_%s }}" % suffix,
            "DB_PASSWORD": planted["password"],
            "RELEASE_FILE": str(release_file or ""),
        },
    })  # fmt: skip
    return await client.create_flow_run_from_deployment(deployment_id)


async def _metered_row(tmp_path: Path, run_id):
    ledger = await Ledger.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    try:
        for _ in range(80):
            row = await ledger.last_attempt(str(run_id))
            if row is not None and row.metered_at is not None:
                return row
            await asyncio.sleep(0.25)
        raise AssertionError(f"flow run {run_id} was never metered")
    finally:
        await ledger.close()


def _planted() -> dict[str, str]:
    token = uuid.uuid4().hex
    return {
        "api_key": f"pnu_planted{token}",
        "block": f"planted-block-{token}",
        "password": f"planted-password-{token}",
        "variable": f"planted-variable-{token}",
    }


async def test_planted_secrets_are_kept_nowhere(prefect_api_url, prefect_client, local_pool, tmp_path, caplog):
    planted = _planted()
    values = list(planted.values())
    run = await _planted_run(prefect_client, local_pool, planted)
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path)
    config.workspaces[0].api_key = SecretStr(planted["api_key"])  # the OSS server ignores it; the run's env gets it
    with caplog.at_level(logging.DEBUG):
        async with running_dispatcher(config):
            runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=90)
            row = await _metered_row(tmp_path, run.id)
        metrics_text = generate_latest().decode()

    state = runs[run.id].state
    assert state.name == "Crashed", state.message
    # Redaction, not emptiness: the lines the flow printed are there, its secrets masked.
    for line in ("visible: the flow starts", "PREFECT_API_KEY is *** !", "BLOCK_SECRET is *** !",
                 "DB_PASSWORD is *** !", "FROM_VARIABLE is *** !", "visible: the flow crashes now"):  # fmt: skip
        assert line in state.message, state.message
    assert row.exit_code == 3

    assert files_containing(tmp_path, values) == []  # run directory, spec, output, ledger database
    assert files_containing(Path(os.environ["PREFECT_HOME"]), values) == []  # the dispatcher's Prefect home
    logged = [caplog.text, *(record.getMessage() for record in caplog.records)]
    assert not [value for value in values if any(value in text for text in logged)]
    assert not [value for value in values if value in metrics_text]
    states = await prefect_client.read_flow_run_states(run.id)
    assert len(states) >= 3  # Scheduled, Pending, Crashed
    shown = [f"{s.name} {s.message or ''}" for s in states]
    assert not [value for value in values if any(value in text for text in shown)]
    ledger_row = row.model_dump_json()  # every column, the reason included
    assert not [value for value in values if value in ledger_row]


async def test_a_restarted_dispatcher_knows_the_secrets_of_runs_it_adopts(prefect_api_url, prefect_client, local_pool, tmp_path):
    planted, release = _planted(), tmp_path / "release"
    run = await _planted_run(prefect_client, local_pool, planted, release)
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path)
    config.workspaces[0].api_key = SecretStr(planted["api_key"])
    # Restarted as an operator does (SIGTERM): the replica leaves the membership, so the new one
    # owns every run at once. (After a crash it would wait member_ttl_s: see test_watch_shards.)
    async with running_dispatcher(config, graceful=True):
        await wait_until(prefect_client, [run.id], lambda r: bool(r.infrastructure_pid), timeout_s=60)
    async with running_dispatcher(config) as restarted:  # recovery adopts the run before it reports healthy
        [adopted] = [r for r in restarted.workspaces[0].inflight.watched() if r.flow_run_id == run.id]
        assert set(planted.values()) <= set(adopted.secrets.revealed())
        release.touch()
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
    assert runs[run.id].state.name == "Crashed"
    assert "DB_PASSWORD is *** !" in runs[run.id].state.message
