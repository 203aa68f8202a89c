"""The local provider keeps no secret on disk: spec over stdin, output masked before the exit record."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from uuid import uuid4

import pytest

from providers.base import InfraPhase, RunLimits, RunRef, SubmitRequest
from providers.local import LocalJobConfiguration, LocalProvider, LocalSettings, launch, rundir
from providers.secrets import RunSecrets

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRETS = ["api-key-1f2e3d", "block-token-4c5b6a", "multi\nline-secret-7d8e"]


def python_command(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(textwrap.dedent(code))}"


def spec(tmp_path: Path, code: str, secrets: list[str]) -> dict:
    return {
        "flow_run_id": str(uuid4()), "argv": [sys.executable, "-c", code], "env": {"LANG": "C.UTF-8"},
        "cwd": str(tmp_path), "memory_mib": None, "cpu": None, "max_runtime_s": 30, "stop_grace_s": 1,
        "stream_output": True, "secrets": secrets,
    }  # fmt: skip


def new_run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "state" / str(uuid4())
    run_dir.mkdir(parents=True, mode=0o700)
    return run_dir


def contains_any(directory: Path, values: list[str]) -> list[str]:
    """Files below ``directory`` holding any of ``values`` (or any line of a multi-line value)."""
    needles = {part.encode() for value in values for part in [value, *value.splitlines()] if len(part) >= 4}
    return [str(p) for p in directory.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


def test_supervisor_takes_its_spec_from_stdin_and_masks_output_before_the_exit_record(tmp_path: Path) -> None:
    code = "print('visible line'); print('key=api-key-1f2e3d tok=block-token-4c5b6a'); print('multi'); print('line-secret-7d8e')"
    run_dir = new_run_dir(tmp_path)
    supervisor = launch.start_supervisor(run_dir, sys.executable)
    assert launch.send_spec(supervisor, spec(tmp_path, code, SECRETS), timeout_s=10)
    assert supervisor.wait(timeout=30) == 0
    exited = rundir.read_json(run_dir / rundir.EXITED)
    assert (exited["cause"], exited["exit_code"]) == ("EXITED", 0)
    assert (run_dir / rundir.OUTPUT_LOG).read_text() == "visible line\nkey=*** tok=***\n***\n"
    log = (run_dir / rundir.SUPERVISOR_LOG).read_text()
    assert log.index("output redacted") < log.index("EXITED")
    assert contains_any(run_dir, SECRETS) == []


@pytest.mark.parametrize(
    ("sent", "why"),
    [
        (b"", "not a complete JSON object (0 bytes)"),  # the launcher died before writing
        (b'{"argv": ["true"], "env": {"A_TOKEN": "tok-tok-tok"', "not a complete JSON object"),  # ...while writing
        (b'{"argv": [], "env": {}, "cwd": "/"}', "argv is not a non-empty list of strings"),
        (b'["not", "an", "object"]', "not a JSON object"),
    ],
)
def test_supervisor_without_a_whole_spec_records_failed_to_start(tmp_path: Path, sent: bytes, why: str) -> None:
    run_dir = new_run_dir(tmp_path)
    supervisor = launch.start_supervisor(run_dir, sys.executable)
    supervisor.stdin.write(sent)
    supervisor.stdin.close()
    assert supervisor.wait(timeout=30) == 1
    exited = rundir.read_json(run_dir / rundir.EXITED)
    assert (exited["cause"], exited["exit_code"]) == ("FAILED_TO_START", None)
    assert exited["reason"].startswith("could not read the run spec from the dispatcher: ") and why in exited["reason"]
    assert rundir.read_json(run_dir / rundir.SUPERVISOR)["pid"] == supervisor.pid  # it recorded itself
    assert not (run_dir / rundir.STARTED).exists()
    assert contains_any(run_dir, ["tok-tok-tok"]) == []


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    return LocalProvider(LocalSettings(state_dir=tmp_path / "state", stop_grace_s=0.5))


async def wait_for(provider: LocalProvider, ref: RunRef, phase: InfraPhase, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while (status := (await provider.status_many([ref]))[0]).phase != phase:
        assert time.monotonic() < deadline, f"still {status} after {timeout} s"
        await asyncio.sleep(0.05)
    return status


async def test_no_secret_on_disk_while_running_nor_after(provider: LocalProvider, tmp_path: Path) -> None:
    release = tmp_path / "release"
    code = f"""
        import os, pathlib, time
        print('starting', flush=True)
        while not pathlib.Path({str(release)!r}).exists():
            time.sleep(0.02)
        print('env', os.environ['API_TOKEN'], 'arg', {SECRETS[1]!r}, flush=True)
        raise SystemExit(4)
    """
    command = python_command(code) + f" --flag {SECRETS[1]}"
    cfg = LocalJobConfiguration(command=command, env={"API_TOKEN": SECRETS[0]})
    flow_run_id = uuid4()
    req = SubmitRequest(flow_run_id=flow_run_id, attempt_id=flow_run_id, idempotency_key="k", workspace="w", pool="p", configuration=cfg,
                        limits=RunLimits(max_runtime_s=60), secrets=RunSecrets(values=SECRETS[:2]))  # fmt: skip
    ref = RunRef(flow_run_id=flow_run_id, attempt_id=flow_run_id, infrastructure_id=(await provider.submit(req)).infrastructure_id, configuration=cfg)
    run_dir = tmp_path / "state" / str(flow_run_id)
    await wait_for(provider, ref, InfraPhase.RUNNING)
    public = json.loads((run_dir / rundir.SPEC).read_text())
    assert public["program"] == sys.executable and public["argument_count"] == 4
    assert "API_TOKEN" in public["env_names"] and (run_dir / rundir.SPEC).stat().st_mode & 0o777 == 0o600
    assert contains_any(run_dir, SECRETS) == []  # the flow has not printed them yet: nothing else holds them
    release.touch()
    status = await wait_for(provider, ref, InfraPhase.EXITED)
    assert status.exit_code == 4
    assert contains_any(run_dir, SECRETS) == []
    assert await provider.last_log_lines(ref) == ["starting", "env *** arg ***"]


def test_the_supervisor_needs_only_the_standard_library() -> None:
    code = "import sys, providers.local.supervisor; print(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'pydantic'}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
                          env={"PYTHONPATH": str(REPO_ROOT), "PATH": os.environ.get("PATH", "")})  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


async def test_a_secret_program_name_is_masked_in_the_spec_and_the_exit_reason(provider: LocalProvider, tmp_path: Path) -> None:
    cfg = LocalJobConfiguration(command="run-with-token-a8b7c6 --verbose")  # not found: its name is the reason
    flow_run_id = uuid4()
    req = SubmitRequest(flow_run_id=flow_run_id, attempt_id=flow_run_id, idempotency_key="k", workspace="w", pool="p", configuration=cfg,
                        limits=RunLimits(max_runtime_s=60), secrets=RunSecrets(values=["run-with-token-a8b7c6"]))  # fmt: skip
    ref = RunRef(flow_run_id=flow_run_id, attempt_id=flow_run_id, infrastructure_id=(await provider.submit(req)).infrastructure_id, configuration=cfg)
    status = await wait_for(provider, ref, InfraPhase.EXITED)
    assert status.reason == "could not start '***': No such file or directory (***)", status.reason
    run_dir = tmp_path / "state" / str(flow_run_id)
    assert json.loads((run_dir / rundir.SPEC).read_text())["program"] == "***"
    assert contains_any(run_dir, ["run-with-token-a8b7c6"]) == []
