"""Waiting on flow run states in end-to-end tests."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, StateType

from dispatcher.loops.decisions import TERMINAL

FAKE_ENGINE = Path(__file__).resolve().parent / "fake_engine.py"


def fake_engine_command(starts_file: Path, seconds: float = 0.0, final: str = "COMPLETED") -> str:
    return f"{sys.executable} {FAKE_ENGINE} {starts_file} {seconds} {final}"


async def read_runs(client: PrefectClient, ids: Iterable[UUID]) -> dict[UUID, FlowRun]:
    ids = list(ids)
    out: dict[UUID, FlowRun] = {}
    for i in range(0, len(ids), 200):
        chunk = ids[i : i + 200]
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=len(chunk))
        out.update({r.id: r for r in runs})
    return out


async def wait_until(
    client: PrefectClient, ids: Iterable[UUID], predicate: Callable[[FlowRun], bool], timeout_s: float = 120
) -> dict[UUID, FlowRun]:
    ids = list(ids)
    deadline = time.monotonic() + timeout_s
    runs: dict[UUID, FlowRun] = {}
    while time.monotonic() < deadline:
        runs = await read_runs(client, ids)
        if len(runs) == len(ids) and all(predicate(r) for r in runs.values()):
            return runs
        await asyncio.sleep(0.25)
    states = {str(i)[:8]: (runs[i].state.name if i in runs and runs[i].state else None) for i in ids}
    raise TimeoutError(f"condition not met after {timeout_s}s: {states}")


def is_final(run: FlowRun) -> bool:
    return run.state is not None and run.state.type in TERMINAL


def is_running(run: FlowRun) -> bool:
    return run.state is not None and run.state.type == StateType.RUNNING


def run_dirs(state_dir: Path, flow_run_id: UUID) -> list[Path]:
    """The local provider's directories of a flow run's attempts (one per attempt), oldest first."""
    import json

    found = []
    for spec in state_dir.glob("*/spec.json"):
        if json.loads(spec.read_text()).get("flow_run_id") == str(flow_run_id):
            found.append(spec.parent)
    return sorted(found, key=lambda path: path.stat().st_mtime)


def run_dir(state_dir: Path, flow_run_id: UUID) -> Path:
    """The directory of a flow run's latest attempt."""
    dirs = run_dirs(state_dir, flow_run_id)
    if not dirs:
        raise FileNotFoundError(f"no local run directory of flow run {flow_run_id} in {state_dir}")
    return dirs[-1]
