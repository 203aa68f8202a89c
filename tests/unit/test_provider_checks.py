"""Provider.check_settings: what ``dispatcher check`` reports about each provider's own settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from providers.ecs import EcsProvider
from providers.ecs.config import EcsSettings
from providers.local import LocalProvider
from providers.local.config import LocalSettings


def findings(results) -> list[tuple[str, str]]:
    return [(r.level, r.message) for r in results]


async def test_local_state_dir_and_python_are_checked_without_creating_anything(tmp_path: Path):
    state_dir = tmp_path / "runs" / "local"
    provider = LocalProvider(LocalSettings(state_dir=state_dir, python=sys.executable))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert findings(await provider.check_settings()) == [
        ("ok", f"state_dir {state_dir} does not exist yet; serve creates it"),
        ("ok", f"python {sys.executable} runs (Python {version})"),
    ]
    assert not state_dir.parent.exists()


async def test_local_state_dir_that_is_a_file_and_a_python_that_cannot_run_fail(tmp_path: Path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    missing_python = str(tmp_path / "bin" / "python9")
    provider = LocalProvider(LocalSettings(state_dir=not_a_dir, python=missing_python))
    assert findings(await provider.check_settings()) == [
        ("fail", f"state_dir {not_a_dir} exists but is not a directory"),
        ("fail", f"python {missing_python} cannot be run: No such file or directory"),
    ]


async def test_local_python_that_is_not_python_fails(tmp_path: Path):
    provider = LocalProvider(LocalSettings(state_dir=tmp_path, python="/bin/false"))
    assert findings(await provider.check_settings())[1] == ("fail", "python /bin/false exited with code 1")


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Nothing for botocore to find: no variables, no shared files, no instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


async def test_ecs_without_credentials_or_region_only_warns(no_aws_environment):
    provider = EcsProvider(EcsSettings())
    consequence = "only pools whose aws_credentials block provides them can run"
    assert findings(await provider.check_settings()) == [
        ("warn", f"no AWS credentials in providers.ecs or the environment; {consequence}"),
        ("warn", f"no AWS region in providers.ecs or the environment; {consequence}"),
    ]


async def test_ecs_reports_where_credentials_and_region_come_from_never_the_secret(no_aws_environment):
    no_aws_environment.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    no_aws_environment.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    no_aws_environment.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    results = findings(await EcsProvider(EcsSettings()).check_settings())
    assert results == [("ok", "credentials from env"), ("ok", "region eu-west-1")]
    settings = EcsSettings(region_name="us-east-2", credentials={
        "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "very-secret-value",
        "assume_role_arn": "arn:aws:iam::123456789012:role/dispatcher",
    })
    results = findings(await EcsProvider(settings).check_settings())
    assert results == [
        ("ok", "access key from providers.ecs.credentials, then role arn:aws:iam::123456789012:role/dispatcher "
               "(not assumed by check)"),
        ("ok", "region us-east-2"),
    ]
    assert "very-secret-value" not in repr(results)


async def test_ecs_key_without_secret_and_unknown_profile_fail(no_aws_environment):
    half = EcsSettings(region_name="eu-west-1", credentials={"aws_access_key_id": "AKIAEXAMPLE"})
    assert findings(await EcsProvider(half).check_settings())[0] == (
        "fail", "providers.ecs.credentials has aws_access_key_id but no aws_secret_access_key")
    profile = EcsSettings(credentials={"profile_name": "nope"})
    [(level, message)] = findings(await EcsProvider(profile).check_settings())
    assert level == "fail" and message.startswith("AWS configuration unusable: ProfileNotFound: ")
