"""The kit's two ways a container runs, on their own: execute mode (``ProcessRunner``) and simulated mode
(``RunDefaults``). Every wait is on a condition (an event, a line, a process gone), never on a fixed time."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from tests.emulators.kit import (
    ProcessRunner,
    RunDefaults,
    StartFailure,
    container_environment,
    exit_code_of,
    poll_until,
)


class Run:
    """One started process's callbacks: its lines, and its exit once reported."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.exits: list[tuple[int, float]] = []
        self.first_line, self.exited = threading.Event(), threading.Event()

    def on_line(self, line: str) -> None:
        self.lines.append(line)
        self.first_line.set()

    def on_exit(self, code: int, at: float) -> None:
        self.exits.append((code, at))
        self.exited.set()

    def start(self, runner: ProcessRunner, key: str, command: list[str], env: dict[str, str]) -> Run:
        runner.start(key, command, env, on_line=self.on_line, on_exit=self.on_exit)
        return self

    @property
    def code(self) -> int:
        assert self.exited.wait(10), "the process was never reaped"
        ((code, _),) = self.exits  # reported exactly once
        return code


@pytest.fixture
def runner(tmp_path):
    runner = ProcessRunner(str(tmp_path))
    yield runner
    runner.shutdown()


def test_the_environment_is_the_base_then_each_layer_and_nothing_of_the_host(monkeypatch):
    monkeypatch.setenv("HOST_SECRET", "leak")
    env = container_environment({"AGENT": "a", "OWN": "agent"}, {"OWN": "container"})
    assert env["PATH"].startswith(str(Path(sys.executable).parent)) and "HOST_SECRET" not in env
    assert (env["AGENT"], env["OWN"]) == ("a", "container") and "HOME" in env


def test_a_process_runs_in_the_workdir_and_reports_every_line_then_its_exit(runner, tmp_path):
    env = container_environment({"AGENT": "a"}, {"OWN": "mine"})
    code = ("import os, sys; print(os.environ['AGENT'], os.environ['OWN'], os.getcwd()); "
            "print('err', file=sys.stderr); sys.exit(3)")
    run = Run().start(runner, "k", ["python", "-c", code], env)
    assert run.code == 3 and not runner.running("k")
    assert sorted(run.lines) == sorted([f"a mine {tmp_path}", "err"])  # two pipes: any order, all before the exit


def test_terminate_signals_the_group_now_and_kills_it_after_the_grace(runner):
    run = Run().start(runner, "k", ["sh", "-c", "echo up; sleep 30"], container_environment())
    assert run.first_line.wait(10) and runner.running("k")
    assert runner.terminate("k", grace_s=5)
    assert run.code == 143 and not runner.terminate("k", grace_s=5)  # 128 + SIGTERM; no longer running
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); " \
               "time.sleep(30)"
    run = Run().start(runner, "s", ["python", "-c", stubborn], container_environment())
    assert run.first_line.wait(10) and runner.terminate("s", grace_s=0.1)
    assert run.code == 137  # ignored SIGTERM, then SIGKILL: docker stop
    assert (exit_code_of(-15), exit_code_of(-9), exit_code_of(2)) == (143, 137, 2)


def test_what_the_leader_leaves_behind_is_killed_with_it(runner):
    run = Run().start(runner, "k", ["sh", "-c", "sleep 30 & echo $!"], container_environment())
    assert run.code == 0
    orphan = int(run.lines[0])
    assert poll_until(lambda: _gone(orphan) or None, timeout=10), "the orphan outlived its container"


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # dead, waiting for its (new) parent to reap it


def test_a_command_that_cannot_start_is_a_start_failure_in_the_runtimes_words(runner):
    with pytest.raises(StartFailure) as failure:
        runner.start("k", ["no-such-binary-here"], {}, on_line=print, on_exit=print)
    assert str(failure.value) == 'exec: "no-such-binary-here": No such file or directory'
    assert (failure.value.program, failure.value.reason) == ("no-such-binary-here", "No such file or directory")
    with pytest.raises(StartFailure):
        runner.start("k", [], {}, on_line=print, on_exit=print)
    assert not runner.running("k")


def test_a_key_names_one_live_process_and_is_free_again_once_its_exit_was_reported(runner, tmp_path):
    wait_for_release = "import os, time\nwhile not os.path.exists('release'): time.sleep(0.01)"
    first = Run().start(runner, "k", ["python", "-c", wait_for_release], container_environment())
    refused = Run()
    try:
        with pytest.raises(ValueError, match="k is already running"):
            refused.start(runner, "k", ["true"], container_environment())
    finally:
        (tmp_path / "release").touch()  # the process's workdir
    assert first.code == 0 and refused.exits == []
    assert Run().start(runner, "k", ["true"], container_environment()).code == 0  # a retried attempt


def test_shutdown_kills_what_is_still_running(tmp_path):
    runner = ProcessRunner(str(tmp_path))
    run = Run().start(runner, "k", ["sh", "-c", "echo up; sleep 30"], container_environment())
    assert run.first_line.wait(10)
    runner.shutdown()
    assert run.code == 137 and not runner.running("k")


def test_run_defaults_plan_from_the_containers_env():
    defaults = RunDefaults(run_s=0.1, exit_code=0)
    assert defaults.plan({}) == (0.1, 0)
    assert defaults.plan({"EMULATOR_RUN_SECONDS": "2.5", "EMULATOR_EXIT_CODE": "3"}) == (2.5, 3)
    with pytest.raises(ValueError, match="^Emulator: bad EMULATOR_RUN_SECONDS/EMULATOR_EXIT_CODE value: "):
        defaults.plan({"EMULATOR_EXIT_CODE": "x"})
