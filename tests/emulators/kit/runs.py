"""Simulated mode for every emulator: how long a container "runs" and how it exits when nothing is executed.

Without ``execute=True`` an emulator runs no process: each container (ECS
task, Cloud Run task attempt, ACI container) is Running for ``run_s`` seconds
and then exits with ``exit_code``. A test can change both per container
through the container's own environment (``EMULATOR_RUN_SECONDS=5``,
``EMULATOR_EXIT_CODE=1``), so one emulator can hold quick and slow, passing
and failing runs side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class RunDefaults:
    """How a container behaves when not executed and not told otherwise by its env."""

    run_s: float = 0.2
    exit_code: int = 0
    run_env: str = "EMULATOR_RUN_SECONDS"
    exit_env: str = "EMULATOR_EXIT_CODE"

    def plan(self, env: Mapping[str, str]) -> tuple[float, int]:
        """``(run_s, exit_code)`` for a container with ``env``; ``ValueError`` (its message ready for the
        cloud's own 400) if the env sets either to something that is not a number."""
        try:
            return float(env.get(self.run_env, self.run_s)), int(env.get(self.exit_env, self.exit_code))
        except ValueError as exc:
            raise ValueError(f"Emulator: bad {self.run_env}/{self.exit_env} value: {exc}") from None
