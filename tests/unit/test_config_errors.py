"""Configuration errors: one line per problem (file, key path, what is wrong, what is allowed), exit 3.

Most cases go through ``dispatcher.cli.main`` in-process (fast); a few run the CLI
as a subprocess to prove no traceback reaches the terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dispatcher.cli import main
from dispatcher.config import ConfigError, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
VALID = {
    "workspaces": [{"name": "analytics", "api_url": "http://127.0.0.1:1/api", "pools": [{"name": "ecs-prod"}]}],
    "service": {"port": 0},
}


def write(tmp_path: Path, content: dict | str, name: str = "dispatcher.yaml") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def serve_problems(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """``dispatcher serve`` in-process: exit 3, the problems on stderr, nothing else."""
    assert main(["serve", "--config", str(path)]) == 3
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    return err.splitlines()


def with_pool(**pool: object) -> dict:
    return {**VALID, "workspaces": [{**VALID["workspaces"][0], "pools": [{"name": "a"}, {"name": "b", **pool}]}]}


# -- the file itself ----------------------------------------------------------------------


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.yaml"
    assert serve_problems(path, capsys) == [f"{path}: file not found"]


def test_a_directory_or_undecodable_file_cannot_be_read(tmp_path, capsys):
    assert serve_problems(tmp_path, capsys) == [f"{tmp_path}: is a directory, not a configuration file"]
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00workspaces")
    assert serve_problems(binary, capsys) == [f"{binary}: cannot be read: UnicodeDecodeError"]


def test_yaml_syntax_error_names_line_and_column(tmp_path, capsys):
    path = write(tmp_path, "workspaces:\n  - name: a\n    api_url: http://x/api\n   pools: []\n")
    [line] = serve_problems(path, capsys)
    assert line.startswith(f"{path}: line 4, column 4: invalid YAML: expected <block end>, but found")


def test_a_repeated_yaml_key_is_an_error_not_silently_the_last(tmp_path, capsys):
    path = write(tmp_path, "workspaces:\n  - name: a\n    name: b\n")
    assert serve_problems(path, capsys) == [f"{path}: line 3, column 5: invalid YAML: duplicate key 'name' (first at line 2)"]


def test_the_file_must_be_a_mapping_and_name_workspaces(tmp_path):
    assert problems_of(write(tmp_path, "- a\n- b\n")) == [f"{tmp_path / 'dispatcher.yaml'}: must be a mapping, got a list"]
    assert problems_of(write(tmp_path, "")) == [f"{tmp_path / 'dispatcher.yaml'}: workspaces: is required"]


# -- keys and types -----------------------------------------------------------------------


def test_unknown_keys_anywhere_name_the_allowed_keys_and_a_close_match(tmp_path):
    config = with_pool(limits={"max_vpcu": 2})
    config["colour"] = "blue"
    path = write(tmp_path, config)
    assert problems_of(path) == [
        f"{path}: workspaces[0].pools[1].limits.max_vpcu: unknown key 'max_vpcu' (did you mean 'max_vcpu'?); "
        "allowed: max_vcpu, max_memory_mib, max_ephemeral_storage_gib, max_runtime_s",
        f"{path}: colour: unknown key 'colour'; allowed: workspaces, ledger_dsn, managed_provider, managed, providers, "
        "limits, loop, service, instance_name, api, prices",
    ]


def test_provider_sections_are_validated_by_each_providers_settings_model(tmp_path):
    path = write(tmp_path, {**VALID, "providers": {
        "local": {"state_dir": str(tmp_path), "stop_grace": 3},  # LocalSettings itself ignores extra keys
        "ecs": {"region_name": "eu-west-1", "max_attempts": 0, "credentials": {"profile": "x"}},
    }})
    assert problems_of(path) == [
        f"{path}: providers.local.stop_grace: unknown key 'stop_grace' (did you mean 'stop_grace_s'?); "
        "allowed: state_dir, stop_grace_s, retention_s, envs_dir, python, warm_engine",
        f"{path}: providers.ecs.max_attempts: must be greater than or equal to 1, got 0",
        f"{path}: providers.ecs.credentials.profile: unknown key 'profile' (did you mean 'profile_name'?); "
        "allowed: aws_access_key_id, aws_secret_access_key, aws_session_token, profile_name, region_name, "
        "aws_client_parameters, assume_role_arn, assume_role_kwargs",
    ]


def test_unknown_provider_kinds_name_the_known_ones(tmp_path):
    path = write(tmp_path, {**with_pool(provider="gcp"), "managed_provider": "gke", "providers": {"gcp": {}}})
    known = "must name a known provider: local, ecs, cloud-run, aci"
    assert problems_of(path) == [
        f"{path}: workspaces[0].pools[1].provider: {known}, got 'gcp'",
        f"{path}: managed_provider: {known}, got 'gke'",
        f"{path}: providers.gcp: unknown provider 'gcp'; known: local, ecs, cloud-run, aci",
    ]


def test_wrong_types_say_what_is_expected(tmp_path):
    path = write(tmp_path, {**with_pool(limits={"max_memory_mib": "lots"}), "loop": {"listen_for_events": "maybe"}})
    assert problems_of(path) == [
        f"{path}: workspaces[0].pools[1].limits.max_memory_mib: must be a valid integer, "
        "unable to parse string as an integer, got 'lots'",
        f"{path}: loop.listen_for_events: must be a valid boolean, unable to interpret input, got 'maybe'",
    ]


@pytest.mark.parametrize(("section", "key", "value", "rule"), [
    ("pool", "max_vcpu", -1, "must be greater than 0"),
    ("pool", "max_runtime_s", 0, "must be greater than 0"),
    ("workspace", "monthly_compute_minutes", 0, "must be greater than 0"),
    ("loop", "poll_interval_s", 0, "must be greater than 0"),
    ("loop", "submit_deadline_s", -5, "must be greater than 0"),
    ("loop", "max_concurrent_submissions", 0, "must be greater than or equal to 1"),
    ("loop", "prefetch_s", -1, "must be greater than or equal to 0"),
    ("service", "port", 70000, "must be less than or equal to 65535"),
    ("service", "port", -1, "must be greater than or equal to 0"),
    ("service", "startup_timeout_s", 0, "must be greater than 0"),
])
def test_caps_intervals_and_ports_must_be_in_range(tmp_path, capsys, section, key, value, rule):
    if section == "pool":
        config, where = with_pool(limits={key: value}), f"workspaces[0].pools[1].limits.{key}"
    elif section == "workspace":
        config, where = {**VALID, "workspaces": [{**VALID["workspaces"][0], key: value}]}, f"workspaces[0].{key}"
    else:
        config, where = {**VALID, section: {key: value}}, f"{section}.{key}"
    path = write(tmp_path, config)
    assert serve_problems(path, capsys) == [f"{path}: {where}: {rule}, got {value}"]


def test_nothing_to_serve_and_duplicate_names_are_errors(tmp_path):
    path = write(tmp_path, {"workspaces": []})
    assert problems_of(path) == [
        f"{path}: workspaces: must list at least one workspace (with none, serve would start and serve nothing)"
    ]
    ws = VALID["workspaces"][0]
    path = write(tmp_path, {"workspaces": [
        {**ws, "pools": [{"name": "p"}, {"name": "q"}, {"name": "p", "limits": {"max_vcpu": 0}}]},
        {**ws, "pools": []},
    ]})
    assert problems_of(path) == [
        f"{path}: workspaces[0].pools[2].name: pool 'p' is already defined at workspaces[0].pools[0]; "
        "pool names must be unique within a workspace",
        f"{path}: workspaces[0].pools[2].limits.max_vcpu: must be greater than 0, got 0",
        f"{path}: workspaces[1].name: workspace 'analytics' is already defined at workspaces[0]; "
        "workspace names must be unique",
        f"{path}: workspaces[1].pools: must list at least one pool (a workspace without pools serves nothing)",
    ]


def test_ledger_dsn_scheme_and_api_url_shape(tmp_path):
    path = write(tmp_path, {**VALID, "ledger_dsn": "mysql://dispatcher:hunter2@db/ledger"})
    assert problems_of(path) == [
        f"{path}: ledger_dsn: unsupported ledger DSN scheme 'mysql'; "
        "use sqlite+aiosqlite:///path or postgresql+asyncpg://..."
    ]
    path = write(tmp_path, {**VALID, "ledger_dsn": "postgresql://u:hunter2@:::x",
                            "workspaces": [{**VALID["workspaces"][0], "api_url": "prefect:4200/api"}]})
    problems = problems_of(path)
    assert problems == [
        f"{path}: workspaces[0].api_url: must be an http:// or https:// URL of the Prefect API, "
        "e.g. http://prefect:4200/api, got 'prefect:4200/api'",
        f"{path}: ledger_dsn: is not a database URL; use sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    ]
    assert "hunter2" not in "\n".join(problems)


# -- ${VAR} and secrets ---------------------------------------------------------------------


def test_unset_variable_names_the_variable_and_the_key_once(tmp_path, monkeypatch):
    monkeypatch.delenv("H6_UNSET", raising=False)
    config = {**VALID, "service": {"port": "${H6_UNSET}"}}
    config["workspaces"] = [{**VALID["workspaces"][0], "auth_string": "${H6_UNSET}"}]
    path = write(tmp_path, config)
    hint = "is not set in the environment (set it, or write ${H6_UNSET:-default} for a default)"
    # The empty string left in its place is not reported again (port would be "not an integer").
    assert problems_of(path) == [
        f"{path}: workspaces[0].auth_string: ${{H6_UNSET}} {hint}",
        f"{path}: service.port: ${{H6_UNSET}} {hint}",
    ]


def test_secrets_and_values_from_the_environment_are_never_echoed(tmp_path, monkeypatch):
    monkeypatch.setenv("H6_PORT", "secret-port-value")
    monkeypatch.setenv("H6_PASSWORD", "hunter2")
    path = write(tmp_path, {
        "workspaces": [{**VALID["workspaces"][0], "api_key": 123456789, "colour": "${H6_PASSWORD}"}],
        "service": {"port": "${H6_PORT}"},
        "ledger_dsn": "oracle://u:${H6_PASSWORD}@db/x",
        "providers": {"ecs": {"credentials": {"aws_access_key_id": "AKIA", "aws_secret_access_key": ["x1y2z3"]}}},
    })
    problems = problems_of(path)
    assert problems == [
        f"{path}: workspaces[0].api_key: must be a valid string, got <hidden>",
        f"{path}: workspaces[0].colour: unknown key 'colour'; allowed: name, api_url, api_key, auth_string, pools, "
        "limits, monthly_compute_minutes, budget, ui_url",
        f"{path}: service.port: must be a valid integer, unable to parse string as an integer, got <hidden>",
        f"{path}: ledger_dsn: unsupported ledger DSN scheme 'oracle'; use sqlite+aiosqlite:///path or "
        "postgresql+asyncpg://...",
        f"{path}: providers.ecs.credentials.aws_secret_access_key: must be a valid string, got a list",
    ]
    text = "\n".join(problems)
    for secret in ("123456789", "hunter2", "secret-port-value", "x1y2z3"):
        assert secret not in text


def test_every_problem_of_a_file_at_once_in_file_order(tmp_path):
    path = write(tmp_path, (
        "loop: {poll_interval_s: 0}\n"
        "workspaces:\n"
        "  - name: w\n"
        "    api_url: http://x/api\n"
        "    pools: [{name: p, limits: {max_vcpu: -1}}]\n"
        "    colour: blue\n"
        "service: {port: 65536}\n"
    ))
    assert [line.split(": ")[1] for line in problems_of(path)] == [
        "loop.poll_interval_s", "workspaces[0].pools[0].limits.max_vcpu", "workspaces[0].colour", "service.port",
    ]


# -- every command, exit codes ------------------------------------------------------------------


def test_the_brief_example_line_and_exit_3_for_check_and_usage(tmp_path, capsys):
    path = write(tmp_path, with_pool(limits={"max_vcpu": -1}))
    expected = [f"{path}: workspaces[0].pools[1].limits.max_vcpu: must be greater than 0, got -1"]
    for command in (["serve", "--config", str(path)], ["check", "--config", str(path)],
                    ["usage", "--config", str(path)]):
        assert main(command) == 3, command
        out, err = capsys.readouterr()
        assert err.splitlines() == expected and out == ""


def test_help_documents_the_exit_codes_and_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as help_exit:
        main(["--help"])
    assert help_exit.value.code == 0
    out = capsys.readouterr().out
    for line in ("exit codes:", "  2  command-line usage error", "  3  configuration file", "  5  the service port"):
        assert line in out
    with pytest.raises(SystemExit) as usage_exit:
        main(["serve"])  # --config missing
    assert usage_exit.value.code == 2


def test_a_subprocess_prints_the_problems_and_no_traceback(tmp_path):
    path = write(tmp_path, {"workspaces": [], "loop": {"max_concurrent_submissions": 0}})
    result = subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", "serve", "--config", str(path)], capture_output=True, text=True,
        cwd=REPO_ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 3
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}: workspaces: must list at least one workspace (with none, serve would start and serve nothing)",
        f"{path}: loop.max_concurrent_submissions: must be greater than or equal to 1, got 0",
    ]


def test_the_example_configuration_is_still_valid(monkeypatch):
    monkeypatch.setenv("LEDGER_PASSWORD", "x")
    monkeypatch.setenv("USAGE_TOKEN_ANALYTICS", "an-example-token-0123456789")
    assert load_config(REPO_ROOT / "dispatcher.example.yaml").service.startup_timeout_s > 0
