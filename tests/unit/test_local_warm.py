"""The warm engine's pieces without a Prefect server: which runs go warm, and what a fork of the zygote sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from providers.local import LocalJobConfiguration, LocalProvider, LocalSettings
from providers.local.warm import DEFAULT_ARGV, is_warm_eligible
from tests.unit.test_local_provider import REPO_ROOT, request

OUR_BIN = str(Path(sys.executable).parent)


def test_only_the_default_command_of_our_interpreter_goes_warm(tmp_path: Path) -> None:
    env = {"PATH": f"{OUR_BIN}{os.pathsep}/usr/bin", "PYTHONPATH": "/x", "PYTHONUNBUFFERED": "1"}
    assert is_warm_eligible(DEFAULT_ARGV, env)
    assert not is_warm_eligible(["prefect", "flow-run", "execute", "--help"], env)  # another command
    assert not is_warm_eligible(["python", "-m", "prefect.engine"], env)
    assert not is_warm_eligible(DEFAULT_ARGV, {**env, "PYTHONHOME": "/elsewhere"})  # another interpreter setup
    other_venv = tmp_path / "venv" / "bin"
    other_venv.mkdir(parents=True)
    (other_venv / "prefect").write_text("#!/bin/sh\n")
    (other_venv / "prefect").chmod(0o755)
    assert not is_warm_eligible(DEFAULT_ARGV, {"PATH": f"{other_venv}{os.pathsep}{OUR_BIN}"})  # e.g. a per-run venv
    assert not is_warm_eligible(DEFAULT_ARGV, {"PATH": str(tmp_path)})  # no prefect at all: cold says why


def test_the_setting_turns_the_warm_engine_off(tmp_path: Path) -> None:
    default = LocalJobConfiguration(env={"PATH": OUR_BIN})
    default.command = None  # Prefect's default command
    on = LocalProvider(LocalSettings(state_dir=tmp_path / "on"))
    off = LocalProvider(LocalSettings(state_dir=tmp_path / "off", warm_engine=False))
    assert on._spec(request(default), default, tmp_path)["warm"] is True
    assert off._spec(request(default), default, tmp_path)["warm"] is False
    custom = LocalJobConfiguration(command="prefect flow-run execute --x", env={"PATH": OUR_BIN})
    assert on._spec(request(custom), custom, tmp_path)["warm"] is False


# Imports Prefect with one API URL and variable, like the zygote, then forks two "runs" with their own.
FORKS = """
    import json, os, subprocess, sys, tempfile
    os.environ.update({"PREFECT_API_URL": "http://zygote.invalid/api", "ZYGOTE_ONLY": "z"})
    from providers.local import warm_child, zygote
    warm_child.remember_interpreter_path()
    zygote.preload()

    def run(env, cwd, out):
        pid = os.fork()
        if pid == 0:
            warm_child.apply_environment(env, cwd)
            from prefect.client.orchestration import get_client
            from prefect.settings import get_current_settings
            child_env = subprocess.run(["env"], capture_output=True, text=True).stdout.splitlines()
            info = {"settings_url": get_current_settings().api.url, "client_url": str(get_client(sync_client=True).api_url),
                    "environ": dict(os.environ), "subprocess_env": sorted(child_env), "path": sys.path[:2],
                    "tmp": tempfile.gettempdir()}
            with open(out, "w") as f:
                json.dump(info, f)
            os._exit(0)
        os.waitpid(pid, 0)

    run({"PREFECT_API_URL": "http://run-one.invalid/api", "RUN_SECRET": "one", "PYTHONPATH": "/extra",
         "TMPDIR": sys.argv[1], "PATH": os.environ["PATH"]}, sys.argv[1], sys.argv[2])
    run({"PREFECT_API_URL": "http://run-two.invalid/api", "PATH": os.environ["PATH"]}, "/", sys.argv[3])
"""


def test_a_fork_sees_its_runs_environment_and_settings_and_nothing_else(tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT), "PREFECT_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(FORKS), str(tmp_path), str(one), str(two)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first, second = json.loads(one.read_text()), json.loads(two.read_text())
    assert first["settings_url"] == "http://run-one.invalid/api"  # not the URL Prefect was imported with
    assert first["client_url"].startswith("http://run-one.invalid/api")
    assert first["environ"]["RUN_SECRET"] == "one" and "ZYGOTE_ONLY" not in first["environ"]
    assert "RUN_SECRET=one" in first["subprocess_env"] and not any(v.startswith("ZYGOTE_ONLY=") for v in first["subprocess_env"])
    assert first["path"] == [str(tmp_path), "/extra"]  # cwd first, then the run's PYTHONPATH, like `python -m`
    assert first["tmp"] == str(tmp_path)
    assert second["settings_url"] == "http://run-two.invalid/api"
    assert second["client_url"].startswith("http://run-two.invalid/api")
    assert "RUN_SECRET" not in second["environ"] and "ZYGOTE_ONLY" not in second["environ"]  # nothing of run one
    assert second["path"][0] == "/" and "/extra" not in second["path"]
