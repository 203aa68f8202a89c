"""The cloud behind the chaos scenarios: one adapter per emulator, in realistic mode.

A scenario never names a cloud: it gets its emulator, the dispatcher's provider settings,
the job variables and the fault profile from a ``ChaosCloud``; the invariants read the
infrastructure each flow run got from ``infrastructure()``, counted at the emulator. Scenarios
marked ``@pytest.mark.clouds(...)`` run on each cloud named (default: ECS only; see conftest).

Every emulator runs in realistic mode (``tests/emulators/kit/realism.py``): the cloud's API
quotas and launch-rate limits, network objects checked against emulated state, phase times
scaled by ``TIME_FACTOR``. The faults of a scenario come on top of that.
"""

from __future__ import annotations

import contextlib
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.emulators.kit import Faults, Realism

#: The real cloud's phase times, this much faster, so a scenario stays within its time budget.
TIME_FACTOR = 0.01
REALISM = Realism(time_factor=TIME_FACTOR)
#: What the dispatcher puts in every run's environment, and how the adapters find a run's infrastructure.
FLOW_RUN_ENV = "PREFECT__FLOW_RUN_ID"


@dataclass(frozen=True)
class Infra:
    """One piece of infrastructure the cloud started for a flow run, as the invariants check it."""

    flow_run_id: str
    key: str
    """What ``ChaosCloud.key_of`` makes of the infrastructure id the dispatcher recorded for it."""
    starts: int
    """How many times the cloud started it (an ACI group PUT again is started again)."""
    ended: bool
    failed_to_start: bool
    billed_from: float | None
    """When the cloud starts billing it (epoch seconds); None: never billed."""
    stopped_at: float | None


class ChaosCloud(ABC):
    """One cloud's emulator set up for the chaos cluster, and how to read its infrastructure."""

    name: str
    """The dispatcher's provider name (``providers.<name>`` in its config)."""
    pool_type: str

    @abstractmethod
    def emulator(self, workdir: Path) -> contextlib.AbstractContextManager[Any]:
        """The emulator in execute mode (each run's command runs on this machine) and realistic mode."""

    @abstractmethod
    def provider_settings(self, emu: Any) -> dict:
        """The dispatcher's ``providers.<name>`` section for this emulator."""

    @abstractmethod
    def job_variables(self, emu: Any, command: str) -> dict:
        """The deployment's job variables: the run's command, and where it runs."""

    @abstractmethod
    def no_faults(self) -> Faults:
        """This emulator's fault knobs, all off (realistic mode switches its own back on)."""

    @abstractmethod
    def api_faults(self, rng: random.Random) -> tuple[Faults, int]:
        """Throttling, 5xx, lost responses and accept-then-fail on the calls that start and watch runs,
        plus launches that never start; returns the faults and how many runs must end Crashed."""

    @abstractmethod
    def infrastructure(self, emu: Any) -> list[Infra]:
        """Everything the cloud started, ended or not, deleted or not."""

    @abstractmethod
    def key_of(self, infrastructure_id: str) -> str:
        """The ``Infra.key`` an infrastructure id recorded by the dispatcher names."""

    def spent(self, faults: Faults) -> bool:
        """Every countdown of ``api_faults`` was used up by the burst."""
        return (faults.lost_responses, faults.accept_then_fail, getattr(faults, "start_failures", 0)) == (0, 0, 0)


def shared_rates(rng: random.Random, ops: set[str], most: int = 4, rate_scale: float = 1.0,
                 **countdowns: int) -> dict[str, Any]:
    """The fault rates every cloud gets, seeded; ``countdowns`` are its own knobs.

    ``most`` bounds each countdown: the burst must be sure to make enough calls to spend them all,
    whatever the interleaving (a launch answered 5xx but carried out is found, not launched again).
    ``rate_scale`` lowers the rates for a cloud whose submission makes several calls (look up, then
    launch): each fails the attempt, and the retries' backoff (up to 30 s each) must end well
    within the invariants' wait, or a run would look stuck by bad luck alone.
    """
    return dict(
        throttle_rate=round(rng.uniform(0.1, 0.25) * rate_scale, 3),
        server_error_rate=round(rng.uniform(0.05, 0.15) * rate_scale, 3),
        lost_responses=rng.randint(min(2, most), most),
        accept_then_fail=rng.randint(min(2, most), most),
        ops=ops,
        seed=rng.randrange(2**32),
        **countdowns,
    )


def by_flow_run(infra: list[Infra]) -> dict[str, list[Infra]]:
    grouped: dict[str, list[Infra]] = {}
    for item in infra:
        grouped.setdefault(item.flow_run_id, []).append(item)
    return grouped


def cloud_named(name: str) -> ChaosCloud:
    from tests.chaos.cloud_aci import AciChaos
    from tests.chaos.cloud_cloud_run import CloudRunChaos
    from tests.chaos.cloud_ecs import EcsChaos

    clouds: dict[str, ChaosCloud] = {c.name: c for c in (EcsChaos(), CloudRunChaos(), AciChaos())}
    return clouds[name]
