"""Make ``tests.emulators`` importable even when pytest's rootdir is this folder."""

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)


import pytest  # noqa: E402

from tests.emulators.aci import AciEmulator, Timings, aio_aci_client  # noqa: E402
from tests.emulators.cloud_run import CloudRunEmulator  # noqa: E402
from tests.emulators.ecs import EcsEmulator  # noqa: E402
from tests.emulators_tests.ecs_helpers import client  # noqa: E402
from tests.emulators_tests.fake_clock import FakeClock  # noqa: E402


@pytest.fixture
def clock() -> FakeClock:
    """The realistic-mode tests' clock: buckets refill when a test moves it."""
    return FakeClock()


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


# -- Cloud Run ------------------------------------------------------------------------------------


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


# -- ACI ------------------------------------------------------------------------------------------


@pytest.fixture
def aci_emu():
    with AciEmulator() as emulator:
        yield emulator
    assert emulator.errors == []  # no handler crash, every response matched its SDK model


@pytest.fixture
async def aci(aci_emu):
    """The real aio ContainerInstanceManagementClient on the emulator (no retries, no polling delay)."""
    async with aio_aci_client(aci_emu.endpoint_url, aci_emu.subscription_id) as client:
        yield client


@pytest.fixture
def aci_live(tmp_path):
    """An ACI emulator that really runs container commands, with a short docker-stop grace."""
    with AciEmulator(execute=True, workdir=str(tmp_path), timings=Timings(stop_grace_s=0.5)) as emulator:
        yield emulator
    assert emulator.errors == []
