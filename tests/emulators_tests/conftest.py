"""Make ``tests.emulators`` importable even when pytest's rootdir is this folder."""

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)


import pytest  # noqa: E402

from tests.emulators.ecs import EcsEmulator  # noqa: E402
from tests.emulators_tests.ecs_helpers import client  # noqa: E402


@pytest.fixture
def emu():
    with EcsEmulator() as emulator:
        yield emulator
    assert emulator.errors == []  # no handler crash, every response matched its output shape


@pytest.fixture
def ecs(emu):
    return client(emu)


@pytest.fixture
def lax(emu):
    """A client that skips botocore's own parameter validation, to reach the server's."""
    return client(emu, parameter_validation=False)


@pytest.fixture
def live():
    """An emulator that really runs container commands, with a short docker-stop grace."""
    with EcsEmulator(execute=True, stop_timeout_s=0.3) as emulator:
        yield emulator
    assert emulator.errors == []


from tests.emulators.cloud_run import CloudRunEmulator  # noqa: E402


@pytest.fixture
def cr():
    """A Cloud Run emulator (simulated tasks); every response checked against run_v2."""
    with CloudRunEmulator() as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def cr_live(tmp_path):
    """A Cloud Run emulator that really runs container commands, with a short stop grace."""
    with CloudRunEmulator(execute=True, stop_grace_s=0.3, workdir=str(tmp_path)) as emulator:
        yield emulator
    assert emulator.errors == []
