"""The local provider against real subprocesses (no Prefect server)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from prefect.server.schemas.actions import validate_base_job_template
from prefect.utilities.templating import apply_values

from providers.base import InfraPhase, InfraStatus, RunLimits, RunRef, StopCause, SubmitRequest
from providers.errors import InvalidJobConfiguration, TransientProviderError
from providers.local import LocalJobConfiguration, LocalProvider, LocalSettings
from providers.local.runs import VANISHED_REASON

PY = shlex.quote(sys.executable)
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> LocalSettings:
    return LocalSettings(state_dir=tmp_path / "state", stop_grace_s=0.5)


@pytest.fixture
def provider(settings: LocalSettings) -> LocalProvider:
    return LocalProvider(settings)


def python_command(code: str) -> str:
    return f"{PY} -c {shlex.quote(textwrap.dedent(code))}"


def request(cfg: LocalJobConfiguration, flow_run_id: UUID | None = None, max_runtime_s: int = 30) -> SubmitRequest:
    flow_run_id = flow_run_id or uuid4()
    return SubmitRequest(
        flow_run_id=flow_run_id, attempt_id=flow_run_id,
        idempotency_key=f"flow-run-{flow_run_id}",
        workspace="w",
        pool="p",
        configuration=cfg,
        limits=RunLimits(max_runtime_s=max_runtime_s),
    )


async def submit(provider: LocalProvider, cfg: LocalJobConfiguration, **kwargs) -> RunRef:
    req = request(cfg, **kwargs)
    submission = await provider.submit(req)
    return RunRef(flow_run_id=req.flow_run_id, attempt_id=req.attempt_id, infrastructure_id=submission.infrastructure_id, configuration=cfg)


async def wait_for(provider: LocalProvider, ref: RunRef, phase: InfraPhase, timeout: float = 10) -> InfraStatus:
    deadline = time.monotonic() + timeout
    while True:
        [status] = await provider.status_many([ref])
        if status.phase == phase:
            return status
        assert time.monotonic() < deadline, f"still {status} after {timeout} s"
        await asyncio.sleep(0.05)


def is_alive(pid: int) -> bool:
    """Zombies count as dead: this container's init does not reap orphans."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def wait_dead(pid: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still alive"
        time.sleep(0.05)


def run_dir(settings: LocalSettings, ref: RunRef) -> Path:
    return settings.state_dir / str(ref.flow_run_id)


async def test_exit_codes_and_timestamps(provider: LocalProvider) -> None:
    before = datetime.now(timezone.utc)
    ok = await submit(provider, LocalJobConfiguration(command=python_command("print('hello')")))
    failing = await submit(provider, LocalJobConfiguration(command=python_command("import sys; sys.exit(3)")))
    assert ok.infrastructure_id.split(":")[0] == provider.hostname
    for ref, code in ((ok, 0), (failing, 3)):
        status = await wait_for(provider, ref, InfraPhase.EXITED)
        assert (status.exit_code, status.stop_cause) == (code, StopCause.EXITED)
        assert before - timedelta(seconds=1) <= status.started_at <= status.stopped_at
        assert status.stopped_at <= datetime.now(timezone.utc) + timedelta(seconds=1)
    assert await provider.last_log_lines(ok) == ["hello"]


async def test_env_is_only_the_configured_env_plus_basics(provider, monkeypatch) -> None:
    monkeypatch.setenv("DISPATCHER_SECRET", "do-not-leak")
    code = "import os, json; print(json.dumps(sorted(os.environ)))"
    env = {"PREFECT_API_KEY": "k", "UNSET_ME": None}
    ref = await submit(provider, LocalJobConfiguration(command=python_command(code), env=env, memory=512))
    await wait_for(provider, ref, InfraPhase.EXITED)
    names = set(json.loads((await provider.last_log_lines(ref))[-1]))
    assert {"PREFECT_API_KEY", "PATH", "MALLOC_ARENA_MAX"} <= names
    assert "DISPATCHER_SECRET" not in names and "UNSET_ME" not in names


async def test_submit_twice_starts_one_process(provider: LocalProvider, tmp_path: Path) -> None:
    marker = tmp_path / "lines"
    cfg = LocalJobConfiguration(command=python_command(f"open({str(marker)!r}, 'a').write('x\\n')"))
    req = request(cfg)
    first, second = await asyncio.gather(provider.submit(req), provider.submit(req))
    assert first.infrastructure_id == second.infrastructure_id
    assert sorted([first.created, second.created]) == [False, True]
    ref = RunRef(flow_run_id=req.flow_run_id, attempt_id=req.attempt_id, infrastructure_id=first.infrastructure_id, configuration=cfg)
    await wait_for(provider, ref, InfraPhase.EXITED)
    third = await provider.submit(req)
    assert (third.infrastructure_id, third.created) == (first.infrastructure_id, False)
    assert marker.read_text().count("x") == 1


async def test_stop_ends_the_whole_process_group(provider: LocalProvider, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    cfg = LocalJobConfiguration(command=f"sh -c 'sleep 60 & echo $! > {pid_file}; wait'")
    ref = await submit(provider, cfg)
    await wait_for(provider, ref, InfraPhase.RUNNING)
    while not pid_file.exists() or not pid_file.read_text().strip():
        await asyncio.sleep(0.02)
    grandchild = int(pid_file.read_text())
    await provider.stop(ref, "cancelled by user")
    await provider.stop(ref, "cancelled by user")  # idempotent
    status = await wait_for(provider, ref, InfraPhase.EXITED)
    assert status.stop_cause == StopCause.STOPPED
    assert status.exit_code == 128 + signal.SIGTERM
    wait_dead(grandchild, timeout=1)
    await provider.stop(ref, "again, after the exit")


@pytest.mark.parametrize("ending", ["exits", "stopped"])
async def test_processes_in_sessions_of_their_own_end_with_the_run(provider, tmp_path: Path, ending: str) -> None:
    """`prefect flow-run execute` starts the engine in a new session: out of the command's group, not of the run."""
    pid_file = tmp_path / "escaped.pid"
    cfg = LocalJobConfiguration(command=python_command(f"""
        import os, subprocess, sys, time
        escaped = subprocess.Popen(["sleep", "300"], start_new_session=True)
        groups = f"{{os.getpgid(escaped.pid)}} {{os.getpgid(0)}}"
        open({str(pid_file)!r} + ".groups", "w").write(groups)
        open({str(pid_file)!r}, "w").write(str(escaped.pid))
        if {ending!r} == "stopped":
            time.sleep(300)
    """))
    ref = await submit(provider, cfg)
    while not pid_file.exists() or not pid_file.read_text().strip():
        await asyncio.sleep(0.02)
    escaped = int(pid_file.read_text())
    escaped_group, command_group = Path(f"{pid_file}.groups").read_text().split()
    assert escaped_group != command_group  # out of the command's process group
    if ending == "stopped":
        await provider.stop(ref, "cancelled by user")
    status = await wait_for(provider, ref, InfraPhase.EXITED)
    assert status.stop_cause == (StopCause.STOPPED if ending == "stopped" else StopCause.EXITED)
    assert not Path(f"/proc/{escaped}").exists()  # killed before the exit was recorded, and reaped


async def test_stop_right_after_submit(provider: LocalProvider) -> None:
    ref = await submit(provider, LocalJobConfiguration(command="sleep 30"))
    await provider.stop(ref, "cancelled at once")  # the supervisor is still starting up
    assert (await wait_for(provider, ref, InfraPhase.EXITED)).stop_cause == StopCause.STOPPED


async def test_supervisor_hangup_ends_the_command(provider: LocalProvider, settings: LocalSettings) -> None:
    ref = await submit(provider, LocalJobConfiguration(command="sleep 30"))
    await wait_for(provider, ref, InfraPhase.RUNNING)
    os.kill(int(ref.infrastructure_id.rsplit(":", 1)[1]), signal.SIGHUP)
    status = await wait_for(provider, ref, InfraPhase.EXITED)
    assert status.stop_cause == StopCause.STOPPED and "SIGHUP" in status.reason
    wait_dead(json.loads((run_dir(settings, ref) / "started.json").read_text())["pid"], timeout=1)


async def test_stop_of_unknown_run_is_a_no_op(provider: LocalProvider) -> None:
    cfg = LocalJobConfiguration(command="true")
    await provider.stop(RunRef(flow_run_id=uuid4(), attempt_id=uuid4(), infrastructure_id=f"{provider.hostname}:1", configuration=cfg), "x")
    await provider.stop(RunRef(flow_run_id=uuid4(), attempt_id=uuid4(), infrastructure_id="elsewhere:1", configuration=cfg), "x")


async def test_memory_cap_is_enforced(provider: LocalProvider) -> None:
    allocate = "b = bytearray({} * 1024 * 1024); print('allocated')"
    too_much = await submit(provider, LocalJobConfiguration(command=python_command(allocate.format(512)), memory=256))
    fits = await submit(provider, LocalJobConfiguration(command=python_command(allocate.format(64)), memory=256))
    failed = await wait_for(provider, too_much, InfraPhase.EXITED)
    assert failed.exit_code != 0
    assert any("MemoryError" in line for line in await provider.last_log_lines(too_much))
    assert (await wait_for(provider, fits, InfraPhase.EXITED)).exit_code == 0


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs at least 2 CPUs")
async def test_cpu_affinity_is_applied(provider: LocalProvider) -> None:
    cfg = LocalJobConfiguration(command=python_command("import os; print(len(os.sched_getaffinity(0)))"), cpu=0.5)
    ref = await submit(provider, cfg)
    assert (await wait_for(provider, ref, InfraPhase.EXITED)).exit_code == 0
    assert await provider.last_log_lines(ref) == ["1"]


async def test_backstop_runtime_cap(provider: LocalProvider) -> None:
    ref = await submit(provider, LocalJobConfiguration(command="sleep 30"), max_runtime_s=1)
    status = await wait_for(provider, ref, InfraPhase.EXITED, timeout=5)
    assert status.stop_cause == StopCause.TIMED_OUT
    assert 1.4 <= (status.stopped_at - status.started_at).total_seconds() < 3


async def test_command_not_found(provider: LocalProvider) -> None:
    ref = await submit(provider, LocalJobConfiguration(command="no-such-command-4711 --flag"))
    status = await wait_for(provider, ref, InfraPhase.EXITED)
    assert status.stop_cause == StopCause.FAILED_TO_START
    assert "no-such-command-4711" in status.reason and status.exit_code is None


async def test_survives_a_dispatcher_restart(settings: LocalSettings) -> None:
    """A dispatcher process submits and exits; a new one on the same state_dir sees the run through."""
    flow_run_id = uuid4()
    gate = settings.state_dir.parent / "gate"  # the command runs until the test has seen it running
    command = python_command(f"""
        import os, time
        deadline = time.monotonic() + 60
        while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:
            time.sleep(0.05)
        raise SystemExit(5)
    """)
    dispatcher = f"""
        import asyncio, sys, uuid
        from providers.base import RunLimits, SubmitRequest
        from providers.local import LocalJobConfiguration, LocalProvider, LocalSettings
        provider = LocalProvider(LocalSettings(state_dir={str(settings.state_dir)!r}))
        req = SubmitRequest(flow_run_id=uuid.UUID({str(flow_run_id)!r}), attempt_id=uuid.UUID({str(flow_run_id)!r}), idempotency_key="k", workspace="w",
                            pool="p", configuration=LocalJobConfiguration(command={command!r}),
                            limits=RunLimits(max_runtime_s=30))
        print(asyncio.run(provider.submit(req)).infrastructure_id)
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(dispatcher)],
        capture_output=True, text=True, timeout=30, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cfg = LocalJobConfiguration(command=command)
    ref = RunRef(flow_run_id=flow_run_id, attempt_id=flow_run_id, infrastructure_id=done.stdout.strip(), configuration=cfg)
    restarted = LocalProvider(settings)
    assert (await wait_for(restarted, ref, InfraPhase.RUNNING, timeout=30)).started_at is not None
    gate.touch()
    status = await wait_for(restarted, ref, InfraPhase.EXITED)
    assert (status.exit_code, status.stop_cause) == (5, StopCause.EXITED)


async def test_supervisor_killed_while_the_command_runs(provider: LocalProvider, settings: LocalSettings) -> None:
    ref = await submit(provider, LocalJobConfiguration(command="sleep 30"))
    await wait_for(provider, ref, InfraPhase.RUNNING)
    os.kill(int(ref.infrastructure_id.rsplit(":", 1)[1]), signal.SIGKILL)
    status = await wait_for(provider, ref, InfraPhase.EXITED)
    assert (status.stop_cause, status.reason) == (StopCause.UNKNOWN, VANISHED_REASON)
    assert status.stopped_at is not None and status.exit_code is None
    child = json.loads((run_dir(settings, ref) / "started.json").read_text())["pid"]
    wait_dead(child)  # the orphaned command does not outlive a run reported as exited


async def test_not_found(provider: LocalProvider) -> None:
    cfg = LocalJobConfiguration(command="true")
    unknown = RunRef(flow_run_id=uuid4(), attempt_id=uuid4(), infrastructure_id=f"{provider.hostname}:1", configuration=cfg)
    elsewhere = RunRef(flow_run_id=uuid4(), attempt_id=uuid4(), infrastructure_id="another-host:1", configuration=cfg)
    statuses = await provider.status_many([unknown, elsewhere])
    assert [s.phase for s in statuses] == [InfraPhase.NOT_FOUND, InfraPhase.NOT_FOUND]
    assert "another host" in statuses[1].reason


async def test_spec_is_private_and_holds_env_names_only(provider: LocalProvider, settings: LocalSettings) -> None:
    ref = await submit(provider, LocalJobConfiguration(command="true", env={"PREFECT_API_KEY": "secret"}))
    directory = run_dir(settings, ref)
    assert (directory / "spec.json").stat().st_mode & 0o777 == 0o600
    assert directory.stat().st_mode & 0o777 == 0o700
    spec = json.loads((directory / "spec.json").read_text())
    assert "PREFECT_API_KEY" in spec["env_names"] and "secret" not in json.dumps(spec)
    await wait_for(provider, ref, InfraPhase.EXITED)
    assert "secret" not in (directory / "supervisor.log").read_text()


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("cpu", {"cpu": 0}),
        ("memory", {"memory": 10}),
        ("working_dir", {"working_dir": "/no/such/dir"}),
        ("command", {"command": "python -c 'unterminated"}),
        ("command", {"command": "   "}),
    ],
)
def test_validate_names_the_field(provider: LocalProvider, field: str, changes: dict) -> None:
    with pytest.raises(InvalidJobConfiguration) as raised:
        provider.validate(LocalJobConfiguration(**changes))
    assert raised.value.field == field


def test_defaults_are_valid_and_resources_name_fields(provider: LocalProvider) -> None:
    template = LocalProvider.base_job_template()
    validate_base_job_template(template)  # every placeholder is a declared variable
    defaults = {k: v["default"] for k, v in template["variables"]["properties"].items() if v.get("default") is not None}
    cfg = LocalJobConfiguration(**apply_values(template["job_configuration"], defaults))
    provider.validate(cfg)
    resources = provider.resources(cfg)
    assert (resources.vcpu, resources.memory_mib) == (1.0, 2048)
    assert resources.fields == {"vcpu": "cpu", "memory_mib": "memory"}


async def test_submit_that_died_before_its_supervisor_is_taken_over(provider, settings) -> None:
    cfg = LocalJobConfiguration(command=python_command("print('ok')"))
    req = request(cfg)
    dead = settings.state_dir / str(req.flow_run_id)
    dead.mkdir(parents=True)  # what a dispatcher killed between mkdir and starting the supervisor leaves
    old = time.time() - 60
    os.utime(dead, (old, old))
    with pytest.raises(TransientProviderError):  # the dispatcher's retry policy calls submit again
        await provider.submit(req)
    submission = await provider.submit(req)
    ref = RunRef(flow_run_id=req.flow_run_id, attempt_id=req.attempt_id, infrastructure_id=submission.infrastructure_id, configuration=cfg)
    assert (await wait_for(provider, ref, InfraPhase.EXITED)).exit_code == 0
    assert submission.created


def start_supervisor_by_hand(provider: LocalProvider, settings: LocalSettings, req: SubmitRequest,
                             cfg: LocalJobConfiguration) -> tuple[Path, dict, subprocess.Popen]:
    """What a submit does up to starting the supervisor, without handing it the spec: a test then plays
    the launcher dying at the step it chooses."""
    from providers.local import launch

    run_dir = settings.state_dir / str(req.flow_run_id)
    run_dir.mkdir(parents=True, mode=0o700)
    spec = provider._spec(req, cfg, run_dir)
    launch.write_public_spec(run_dir / "spec.json", spec)
    return run_dir, spec, launch.start_supervisor(run_dir, settings.python)


async def test_supervisor_records_itself_when_the_launcher_dies_right_after_starting_it(provider, settings) -> None:
    """The dispatcher was killed between starting the supervisor and writing its record."""
    from providers.local import launch

    cfg = LocalJobConfiguration(command=python_command("import time; time.sleep(1)"))
    req = request(cfg)
    _, spec, supervisor = start_supervisor_by_hand(provider, settings, req, cfg)
    assert launch.send_spec(supervisor, spec, timeout_s=10)  # ...and the launcher dies here
    for _ in range(100):
        found = await LocalProvider(settings).find(req)  # what recovery asks after the restart
        if found is not None:
            break
        await asyncio.sleep(0.05)
    assert found is not None and found.infrastructure_id.endswith(f":{supervisor.pid}") and not found.created
    again = await provider.submit(req)  # a re-drive gets the same run, not a second one
    assert again.infrastructure_id == found.infrastructure_id and not again.created
    supervisor.wait(timeout=10)
    assert await provider.find(request(cfg)) is None


@pytest.mark.parametrize("sent", [0, 20], ids=["nothing", "half"])
async def test_submit_that_died_while_handing_over_the_spec_is_started_again(provider, settings, sent: int) -> None:
    """The dispatcher was killed between starting the supervisor and finishing the spec (CI saw it Crashed)."""
    marker = settings.state_dir.parent / "ran.txt"
    cfg = LocalJobConfiguration(command=python_command(f"open({str(marker)!r}, 'a').write('x')"))
    req = request(cfg)
    run_dir, spec, supervisor = start_supervisor_by_hand(provider, settings, req, cfg)
    assert supervisor.stdin is not None
    supervisor.stdin.write(json.dumps(spec).encode()[:sent])
    supervisor.stdin.close()  # ...the launcher dies here
    supervisor.wait(timeout=10)
    assert json.loads((run_dir / "exited.json").read_text())["spec_received"] is False
    assert await provider.find(req) is None  # nothing ran: nothing to meter or watch

    with pytest.raises(TransientProviderError, match="handing its supervisor the spec"):
        await provider.submit(req)  # the re-drive after the restart
    submission = await provider.submit(req)  # the retry policy's next call
    assert submission.created
    ref = RunRef(flow_run_id=req.flow_run_id, attempt_id=req.attempt_id, infrastructure_id=submission.infrastructure_id, configuration=cfg)
    assert (await wait_for(provider, ref, InfraPhase.EXITED)).exit_code == 0
    assert marker.read_text() == "x"  # the command ran exactly once
