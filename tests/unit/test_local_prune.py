"""Retention of local run directories: ended runs go after retention_s, running ones never."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import ValidationError

from providers.base import InfraPhase, RunLimits, RunRef, SubmitRequest
from providers.local import LocalJobConfiguration, LocalProvider, LocalSettings, rundir
from providers.local.prune import prune_run_dirs

RETENTION_S = 3600
OLD = time.time() - 2 * RETENTION_S


def make_run(state_dir: Path, name: str | None = None, age_s: float | None = None, **records: dict) -> Path:
    """A run directory with the given JSON records, every file (and the directory) aged ``age_s``."""
    run_dir = state_dir / (name or str(uuid4()))
    run_dir.mkdir(parents=True)
    (run_dir / rundir.OUTPUT_LOG).write_text("output\n")
    for filename, record in records.items():
        (run_dir / f"{filename}.json").write_text(json.dumps(record))
    if age_s is not None:
        for path in [*run_dir.iterdir(), run_dir]:
            os.utime(path, (time.time() - age_s, time.time() - age_s))
    return run_dir


def me() -> dict:
    """A supervisor record of a live process (this test process)."""
    return {"pid": os.getpid(), "start_ticks": rundir.proc_start_ticks(os.getpid()), "hostname": "h"}


def dead() -> dict:
    """A supervisor record of a process that is gone (our pid, another start time)."""
    return {"pid": os.getpid(), "start_ticks": -1, "hostname": "h"}


EXITED = {"exit_code": 0, "stopped_at": "2024-01-01T00:00:00+00:00", "cause": "EXITED", "reason": "done"}


@pytest.fixture
def orphan():
    """A live command group whose supervisor is gone."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield {"pid": process.pid, "pid_start_ticks": rundir.proc_start_ticks(process.pid)}
    process.kill()
    process.wait()


def test_prune_removes_old_ended_runs_and_keeps_the_rest(tmp_path: Path, orphan: dict) -> None:
    state = tmp_path / "state"
    keep = {
        "running": make_run(state, age_s=2 * RETENTION_S, supervisor=me(), started={"pid": os.getpid()}),
        "recently ended": make_run(state, age_s=10, supervisor=dead(), exited=EXITED),
        "orphan still running": make_run(state, age_s=2 * RETENTION_S, supervisor=dead(), started=orphan),
        "being submitted": make_run(state, age_s=1),  # no supervisor record yet, and not stale
        "recently abandoned": make_run(state, f"{uuid4()}{rundir.ABANDONED_MARK}{time.time_ns()}"),
    }
    remove = {
        "ended long ago": make_run(state, age_s=2 * RETENTION_S, supervisor=dead(), exited=EXITED),
        "abandoned long ago": make_run(state, f"{uuid4()}{rundir.ABANDONED_MARK}{int(OLD * 1e9)}", age_s=2 * RETENTION_S),
        "supervisor vanished long ago": make_run(state, age_s=2 * RETENTION_S, supervisor=dead(), started={"pid": 999_999_999}),
        "submit died long ago": make_run(state, age_s=2 * RETENTION_S),
        "interrupted removal": make_run(state, f"{uuid4()}.pruning-1"),
    }
    result = prune_run_dirs(state, RETENTION_S)
    assert sorted(result.removed) == sorted(path.name for path in remove.values())
    assert result.failures == []
    assert sorted(p.name for p in state.iterdir()) == sorted(path.name for path in keep.values())
    assert prune_run_dirs(state, RETENTION_S).removed == []  # idempotent


def test_an_exit_record_ages_from_when_it_was_written(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, age_s=2 * RETENTION_S, supervisor=dead(), exited=EXITED)
    os.utime(run_dir / rundir.EXITED)  # the run started long ago but ended just now
    assert prune_run_dirs(tmp_path, RETENTION_S).removed == []


def test_unreadable_records_are_reported_not_raised(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, age_s=2 * RETENTION_S)
    (run_dir / rundir.SUPERVISOR).write_text("{not json")
    result = prune_run_dirs(tmp_path, RETENTION_S)
    assert result.removed == [] and result.failures == [f"{run_dir.name}: unreadable run record (JSONDecodeError)"]


def test_missing_state_dir(tmp_path: Path) -> None:
    assert prune_run_dirs(tmp_path / "never-created", RETENTION_S).removed == []


def test_retention_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        LocalSettings(retention_s=0)
    assert LocalSettings().retention_s == 86400


async def test_housekeeping_deletes_an_ended_run_after_retention_only(tmp_path: Path) -> None:
    settings = LocalSettings(state_dir=tmp_path / "state", retention_s=RETENTION_S)
    provider = LocalProvider(settings)
    runs = {}
    for name, command in (("ended", "true"), ("running", "sleep 60")):
        cfg = LocalJobConfiguration(command=command)
        req = SubmitRequest(flow_run_id=uuid4(), attempt_id=uuid4(), idempotency_key=name, workspace="w", pool="p", configuration=cfg,
                            limits=RunLimits(max_runtime_s=60))  # fmt: skip
        submission = await provider.submit(req)
        runs[name] = RunRef(flow_run_id=req.flow_run_id, attempt_id=req.attempt_id, infrastructure_id=submission.infrastructure_id, configuration=cfg)
    for name, phase in (("ended", InfraPhase.EXITED), ("running", InfraPhase.RUNNING)):
        while (await provider.status_many([runs[name]]))[0].phase != phase:
            await asyncio.sleep(0.05)
    await provider.housekeeping()
    assert len(list(settings.state_dir.iterdir())) == 2  # the ended run is within its retention
    for run_dir in settings.state_dir.iterdir():
        for path in [*run_dir.iterdir(), run_dir]:
            os.utime(path, (OLD, OLD))
    await provider.housekeeping()
    assert [p.name for p in settings.state_dir.iterdir()] == [str(runs["running"].attempt_id)]
    [ended, running] = await provider.status_many([runs["ended"], runs["running"]])
    assert (ended.phase, running.phase) == (InfraPhase.NOT_FOUND, InfraPhase.RUNNING)
    await provider.stop(runs["running"], "test over")
