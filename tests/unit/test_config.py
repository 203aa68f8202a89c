"""Configuration loading: environment references, validation."""

from __future__ import annotations

import pytest

from dispatcher.config import ConfigError, load_config


def test_env_references_in_values_are_expanded_and_comments_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTH", "user:pass")
    path = tmp_path / "d.yaml"
    path.write_text(
        "# a comment mentioning ${NOT_SET} is fine\n"
        "workspaces:\n"
        "  - name: w\n"
        "    api_url: ${API:-http://127.0.0.1:4200}/api\n"
        "    auth_string: ${AUTH}\n"
        "    pools: [{name: p}]\n"
    )
    config = load_config(path)
    ws = config.workspaces[0]
    assert ws.api_url == "http://127.0.0.1:4200/api"
    assert ws.auth_string.get_secret_value() == "user:pass"
    assert "user:pass" not in repr(config)  # secrets are SecretStr: never printed


def test_missing_variable_without_default_is_an_error(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("workspaces: [{name: w, api_url: '${SURELY_NOT_SET_X}', pools: [{name: p}]}]\n")
    with pytest.raises(ConfigError, match="SURELY_NOT_SET_X"):
        load_config(path)


def test_unknown_keys_and_double_auth_are_refused(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("workspaces: [{name: w, api_url: 'http://x/api', pools: [{name: p}], colour: blue}]\n")
    with pytest.raises(ConfigError, match="colour"):
        load_config(path)
    path.write_text("workspaces: [{name: w, api_url: 'http://x/api', pools: [{name: p}], api_key: a, auth_string: b}]\n")
    with pytest.raises(ConfigError, match="not both"):
        load_config(path)
