"""The kit's realistic-mode pieces: the switch, a profile applied to fault knobs, shared buckets, named quotas."""

from __future__ import annotations

import pytest

from tests.emulators.kit import (
    THROTTLE,
    FaultDice,
    Faults,
    Profile,
    RateLimit,
    Realism,
    WireErrors,
    per_minute,
    resolve_realism,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Refused(Exception):
    pass


WIRE = WireErrors(throttle=lambda: Refused("throttle"), server_error=lambda: Refused("5xx"),
                  rate_limited=lambda key: Refused(f"quota {key}"))


def test_the_switch(monkeypatch):
    monkeypatch.delenv("EMULATOR_REALISTIC", raising=False)
    assert resolve_realism(None) is None and resolve_realism(False) is None
    assert resolve_realism(True) == Realism() and resolve_realism(0.5) == Realism(time_factor=0.5)
    for value, expected in (("", None), ("off", None), ("0", None), ("on", Realism()), ("0.05", Realism(0.05))):
        monkeypatch.setenv("EMULATOR_REALISTIC", value)
        assert resolve_realism(None) == expected
    assert resolve_realism(False) is None  # an explicit False beats the environment


def test_profile_applies_knobs_in_place_and_the_tests_own_win():
    profile = Profile(api_rates={"Get": RateLimit(1, 2)}, api_groups={"List": "Get"}, phase_s={"boot": 30.0},
                      launch_knobs={"throttle_rate": 0.5}, network_knobs={"seed": 7})
    faults = Faults(rate_limits={"Get": RateLimit(9, 9)}, seed=3)
    assert profile.apply(faults, Realism()) is faults  # in place: countdown knobs keep counting on it
    assert faults.rate_limits == {"Get": RateLimit(9, 9)} and faults.rate_groups == {"List": "Get"}
    assert faults.throttle_rate == 0.5 and faults.seed == 3  # a knob the test set keeps the test's value
    kept = Faults(throttle_rate=0.1)
    profile.apply(kept, Realism(api_rates=False, validate_network=False))
    assert kept.throttle_rate == 0.1 and kept.rate_limits == {} and kept.rate_groups == {} and kept.seed == 0
    assert profile.phase("boot", Realism(time_factor=0.01)) == pytest.approx(0.3)


def test_shared_bucket_and_named_quota_error():
    clock = Clock()
    dice = FaultDice(Faults(rate_limits={"reads": per_minute(2)}, rate_groups={"Get": "reads", "List": "reads"}),
                     clock=clock)
    dice.before_call("Get", WIRE)
    dice.before_call("List", WIRE)
    with pytest.raises(Refused, match="quota reads"):
        dice.before_call("Get", WIRE)
    assert dice.request_fault("Other") is None  # not in a group, no bucket of its own
    clock.now += 30  # 2 per minute: one token
    dice.before_call("List", WIRE)
    assert dice.request_fault("Get") == THROTTLE


def test_admit_takes_several_tokens_or_none():
    clock = Clock()
    dice = FaultDice(Faults(), clock=clock)
    limit = RateLimit(per_s=20, burst=100)
    assert dice.admit("launch", limit, cost=95)
    assert not dice.admit("launch", limit, cost=10)
    assert dice.tokens("launch", limit) == pytest.approx(5)  # the refused call took nothing
    clock.now += 0.25
    assert dice.admit("launch", limit, cost=10)
