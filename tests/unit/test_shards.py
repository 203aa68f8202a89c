"""Which replica watches which attempt: rendezvous hashing and liveness from beats (no ledger)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from dispatcher.config import LoopConfig
from dispatcher.ledger import LedgerRun
from dispatcher.ledger.membership import MemberBeat
from dispatcher.loops.shards import (
    FORGET_AFTER_TTLS,
    Shards,
    rendezvous_owner,
    slot_of_row,
    watch_key,
)
from providers.base import WatchBatch

KEYS = [uuid4() for _ in range(3000)]


def test_owners_are_spread_evenly_and_agree_whatever_the_order() -> None:
    members = ["r-a", "r-b", "r-c"]
    owners = Counter(rendezvous_owner(key, members) for key in KEYS)
    assert set(owners) == set(members)
    assert all(850 <= count <= 1150 for count in owners.values()), owners  # 1000 each, give or take
    assert all(rendezvous_owner(key, members) == rendezvous_owner(key, list(reversed(members))) for key in KEYS)


def test_a_joining_replica_takes_a_share_from_each_and_nothing_else_moves() -> None:
    before = {key: rendezvous_owner(key, ["r-a", "r-b", "r-c"]) for key in KEYS}
    after = {key: rendezvous_owner(key, ["r-a", "r-b", "r-c", "r-d"]) for key in KEYS}
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(after[key] == "r-d" for key in moved)
    assert 600 <= len(moved) <= 900  # about a quarter
    assert set(Counter(before[key] for key in moved)) == {"r-a", "r-b", "r-c"}


def test_watch_groups_are_spread_like_attempts() -> None:
    groups = [f"{'a' * 32}/{n}" for n in range(3000)]
    owners = Counter(rendezvous_owner(group, ["r-a", "r-b", "r-c"]) for group in groups)
    assert all(850 <= count <= 1150 for count in owners.values()), owners


def _row(**fields) -> LedgerRun:
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    attempt_id = str(uuid4())
    return LedgerRun(attempt_id=attempt_id, flow_run_id=attempt_id, attempt=1, workspace="w", pool="p", provider="ecs",
                     claimed_at=now, updated_at=now, **fields)


def test_a_row_is_divided_by_its_watch_group_or_else_by_itself() -> None:
    grouped = _row(watch_key="k" * 32, watch_group=7)
    assert slot_of_row(grouped) == "k" * 32 + "/7"
    alone = _row()
    assert slot_of_row(alone) == UUID(alone.attempt_id)


def test_the_ledger_keeps_a_digest_of_the_batch_key() -> None:
    key = watch_key(WatchBatch(key="ecs|fingerprint|arn:aws:ecs:eu-west-1:1:cluster/prod", size=100))
    assert len(key) == 32 and "cluster" not in key
    assert key == watch_key(WatchBatch(key="ecs|fingerprint|arn:aws:ecs:eu-west-1:1:cluster/prod", size=50))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def shards(clock: Clock, ttl_s: float = 10.0) -> Shards:
    return Shards(ledger=None, workspace="acme", name="me", ttl_s=ttl_s, monotonic=clock)  # type: ignore[arg-type]


def beats(me: Shards, **others: int) -> list[MemberBeat]:
    return [MemberBeat(replica_id=me.replica_id, name="me", beat=1)] + [
        MemberBeat(replica_id=rid, name=rid, beat=beat) for rid, beat in others.items()]


def test_alone_until_the_ledger_answers_then_a_new_member_counts_as_live() -> None:
    clock = Clock()
    me = shards(clock)
    assert me.live == (me.replica_id,) and all(me.owns(key) for key in KEYS[:50])
    me.observe(beats(me, other=7))
    assert set(me.live) == {me.replica_id, "other"}
    assert 0 < sum(me.owns(key) for key in KEYS) < len(KEYS)


def test_a_member_whose_beat_stops_is_dead_after_the_ttl_and_forgotten_much_later() -> None:
    clock = Clock()
    me = shards(clock, ttl_s=10)
    me.observe(beats(me, steady=1, stuck=1))
    for beat in range(2, 5):  # 'steady' keeps beating, 'stuck' was killed
        clock.now += 4
        assert me.observe(beats(me, steady=beat, stuck=1)) == []
    assert set(me.live) == {me.replica_id, "steady"}  # 12 s without a move > 10 s TTL
    assert me.owner(KEYS[0]) in me.live
    clock.now += FORGET_AFTER_TTLS * 10
    assert me.observe(beats(me, steady=9, stuck=1)) == ["stuck"]


def test_a_beat_after_a_pause_of_our_own_reads_is_a_sign_of_life() -> None:
    """Our ledger reads failed for a while: a member whose counter moved meanwhile is alive."""
    clock = Clock()
    me = shards(clock, ttl_s=10)
    me.observe(beats(me, other=1))
    clock.now += 60  # no readings for a minute
    me.observe(beats(me, other=20))
    assert "other" in me.live


def test_the_ttl_must_span_two_beats() -> None:
    with pytest.raises(ValidationError, match="twice membership_interval_s"):
        LoopConfig(membership_interval_s=5, member_ttl_s=8)
    assert LoopConfig().member_ttl_s >= 2 * LoopConfig().membership_interval_s
