"""Realistic mode: one switch that makes an emulator behave like its cloud at its default quotas.

A cloud describes itself once, as data (``Profile`` in ``<cloud>/realistic.py``):
the documented per-API token buckets, the fault knobs that realistic mode
switches on (launch-rate limits, network validation, the wording of capacity
errors) and how long each lifecycle phase takes on the real cloud. A test or a
bench switches it on with ``realistic=True`` (or ``Realism(...)``) on any
emulator constructor, or for every emulator of a process (and the processes it
starts) with the ``EMULATOR_REALISTIC`` environment variable.

Time: phase durations are the real cloud's scaled by ``time_factor`` (0.01: a
30 s Fargate deprovisioning lasts 0.3 s) so tests stay fast. API rates and
launch rates are *not* scaled: they are real-time limits of the cloud's front
end, and a throttled client backs off in real seconds, so a bench measures the
throughput a real account would get.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .faults import Faults, RateLimit

ENV_SWITCH = "EMULATOR_REALISTIC"
"""Unset, empty, ``0`` or ``off``: default mode. ``1``/``on``: ``Realism()``. A number below 1 (``0.05``):
``Realism(time_factor=that)``. Read when an emulator is built with ``realistic=None`` (the default)."""


@dataclass(frozen=True)
class Realism:
    """What realistic mode turns on; every part can be switched off alone."""

    time_factor: float = 0.01
    """Phase durations are the real cloud's times this (1.0: real time)."""
    api_rates: bool = True
    """Per-API token buckets at the cloud's documented rates (on top of any ``Faults.rate_limits`` a test sets)."""
    launch_limits: bool = True
    """Launch-rate limits: Fargate task launches, Cloud Run job runs, ACI creates/deletes and ARM buckets."""
    validate_network: bool = True
    """Subnets, security groups, VPC networks must exist in the emulated state."""
    capacity_failure_rate: float = 0.0
    """Fraction of launches refused for lack of capacity, in the cloud's own words (0: none)."""
    clock: Callable[[], float] | None = field(default=None, compare=False)
    """The buckets' clock (``time.monotonic`` if None); tests inject a fake one to refill buckets without sleeping."""

    def scaled(self, real_s: float) -> float:
        return real_s * self.time_factor


def resolve(realistic: bool | float | Realism | None) -> Realism | None:
    """The ``realistic=`` argument of an emulator constructor as a ``Realism`` (None: default mode).

    None defers to ``EMULATOR_REALISTIC``; ``False`` is off whatever the environment says.
    """
    if realistic is None:
        return _from_env(os.environ.get(ENV_SWITCH, ""))
    if realistic is False:
        return None
    if realistic is True:
        return Realism()
    if isinstance(realistic, Realism):
        return realistic
    return Realism(time_factor=float(realistic))


def _from_env(value: str) -> Realism | None:
    value = value.strip().lower()
    if value in ("", "0", "off", "false", "no"):
        return None
    if value in ("1", "on", "true", "yes"):
        return Realism()
    return Realism(time_factor=float(value))


@dataclass(frozen=True)
class Profile:
    """One cloud's realistic mode, as data.

    ``apply`` turns a test's ``Faults`` into the realistic ones: the API
    buckets under the test's own ``rate_limits`` (a test's entry wins), then
    the launch and network knobs, then the capacity rate. ``phase_s`` maps a
    phase name to the real cloud's seconds; ``phase(name, realism)`` scales it.
    """

    api_rates: dict[str, RateLimit]
    phase_s: dict[str, float]
    api_groups: dict[str, str] = field(default_factory=dict)
    """Operations sharing a bucket of ``api_rates`` (``Faults.rate_groups``): Cloud Run's read/write quotas."""
    launch_knobs: dict[str, Any] = field(default_factory=dict)
    """Fault knobs set when ``launch_limits`` is on (``{"launch_limits": {...}}``)."""
    api_knobs: dict[str, Any] = field(default_factory=dict)
    """Fault knobs set when ``api_rates`` is on, for a cloud whose API buckets are its own (ARM's ``arm_limits``)."""
    network_knobs: dict[str, Any] = field(default_factory=dict)
    """Fault knobs set when ``validate_network`` is on (``{"validate_network": True}``)."""
    always_knobs: dict[str, Any] = field(default_factory=dict)
    """Fault knobs set in realistic mode whatever its parts (the real wording of a capacity error)."""
    capacity_rate_knob: str = "capacity_failure_rate"

    def apply(self, faults: Faults, realism: Realism) -> Faults:
        """Switch the profile's knobs on, in place (countdown knobs keep counting on the test's object).

        A knob the test set away from its default keeps the test's value; the
        capacity rate of ``realism`` is applied only if non-zero.
        """
        knobs: dict[str, Any] = dict(self.always_knobs)
        if realism.api_rates:
            knobs.update(self.api_knobs)
        if realism.launch_limits:
            knobs.update(self.launch_knobs)
        if realism.validate_network:
            knobs.update(self.network_knobs)
        if realism.capacity_failure_rate:
            knobs[self.capacity_rate_knob] = realism.capacity_failure_rate
        for name, value in knobs.items():
            if _is_default(faults, name):
                setattr(faults, name, copy.copy(value))  # a test may change its knob, never the profile
        if realism.api_rates:
            faults.rate_limits = {**self.api_rates, **faults.rate_limits}
            faults.rate_groups = {**self.api_groups, **faults.rate_groups}
        return faults

    def phase(self, name: str, realism: Realism) -> float:
        return realism.scaled(self.phase_s[name])

    def phases(self, realism: Realism) -> dict[str, float]:
        return {name: realism.scaled(seconds) for name, seconds in self.phase_s.items()}


def _is_default(faults: Faults, name: str) -> bool:
    spec = {f.name: f for f in dataclasses.fields(faults)}[name]
    default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
    return getattr(faults, name) == default


def per_minute(count: float) -> RateLimit:
    """A quota of ``count`` requests per minute as a bucket: a minute's worth at once, refilled evenly."""
    return RateLimit(per_s=count / 60, burst=count)
