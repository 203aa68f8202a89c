"""Which replica watches which attempt: membership from the ledger, rendezvous hashing over it.

Every replica of a workspace bumps a counter in the shared ledger each membership tick
and reads the others'. A replica is *live* while its counter keeps moving, judged on the
reader's own monotonic clock: no clock is compared across hosts. A replica that stops
(kill -9, a lost host) is dropped by the others ``member_ttl_s`` after its counter last
moved; one that shuts down cleanly leaves at once.

Replicas divide *slots*. A run's slot is its watch group when its provider batches status
calls (:meth:`providers.base.Provider.watch_batch`: up to 100 ECS tasks of one cluster per
DescribeTasks, every execution of a Cloud Run location per List): groups are filled up to the
batch size before another opens (``Ledger.record_grouped_submission``), so each replica's runs fill
whole batches and three replicas make the status calls one would, not one partly filled batch
more per replica. Otherwise the slot is the attempt itself. The price: with fewer groups than
replicas some replicas watch nothing, which costs nothing at that size.

Each slot belongs to the live replica with the highest rendezvous score for it (highest
random weight hashing): every replica computes the same owner from the same membership, a
joining replica takes about 1/n of the slots from each of the others, and a leaving one's
slots spread over the rest; nothing else moves.

Views may differ for a moment (one replica has seen a death that another has not): an
attempt can then be watched by two replicas or, for under one membership tick, by none.
Both are safe: watching is idempotent (one final state, metering once), and re-driving an
unsubmitted claim, which is not on every cloud (a second Cloud Run :run starts a second
execution), first takes a lease in the ledger (``Ledger.take_redrive``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from uuid import UUID, uuid4

from dispatcher import metrics
from dispatcher.clock import utcnow
from dispatcher.ledger import AttemptRef, Ledger, LedgerRun
from dispatcher.ledger.membership import MemberBeat
from providers.base import WatchBatch

log = logging.getLogger(__name__)
#: Rows of replicas not seen alive for this many TTLs are deleted by whoever notices.
FORGET_AFTER_TTLS = 20


#: What replicas divide: an attempt (its id), or a watch group ("<key digest>/<group>").
Slot = UUID | str


def rendezvous_owner(slot: Slot, members: Iterable[str]) -> str:
    """The member with the highest score for ``slot`` (pure; the same answer on every replica)."""
    return max(members, key=lambda member: _score(member, slot))


def _score(member: str, slot: Slot) -> bytes:
    key = slot.bytes if isinstance(slot, UUID) else slot.encode()
    return hashlib.blake2b(key + member.encode(), digest_size=8).digest()


def watch_key(batch: WatchBatch) -> str:
    """What the ledger keeps of a provider's batch key: a digest (short, and nothing of it readable)."""
    return hashlib.sha256(batch.key.encode()).hexdigest()[:32]


def slot_of_row(row: LedgerRun) -> Slot:
    """The slot of an attempt as its ledger row records it."""
    if row.watch_key is None or row.watch_group is None:
        return UUID(row.attempt_id)
    return f"{row.watch_key}/{row.watch_group}"


async def record_submission(ledger: Ledger, attempt: AttemptRef, infrastructure_id: str, submitted_at: datetime, *,
                            workspace: str, pool: str, provider: str, batch: WatchBatch | None) -> Slot:
    """Record a submission in the ledger, with its watch group when its provider batches status calls,
    and return the slot it is divided by (the group, else the attempt): the row's own, if it had one."""
    if batch is None:  # the same on every replica: watch_batch is pure
        await ledger.record_submission(attempt, infrastructure_id, submitted_at, workspace=workspace, pool=pool,
                                       provider=provider)
        return UUID(attempt.attempt_id)
    _, key, group = await ledger.record_grouped_submission(
        attempt, infrastructure_id, submitted_at, workspace=workspace, pool=pool, provider=provider,
        watch_key=watch_key(batch), batch_size=batch.size)
    return f"{key}/{group}"


class Shards:
    """This replica's view of the workspace's live replicas, and the attempts it owns."""

    def __init__(self, ledger: Ledger, workspace: str, name: str, ttl_s: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ledger = ledger
        self.workspace = workspace
        self.name = name
        self.replica_id = str(uuid4())
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._seen: dict[str, tuple[int, float]] = {}  # replica id -> (beat, when it last moved, our clock)
        self._live: tuple[str, ...] = (self.replica_id,)  # alone until the ledger says otherwise
        self._left = False

    @property
    def live(self) -> tuple[str, ...]:
        return self._live

    def owner(self, slot: Slot) -> str:
        return rendezvous_owner(slot, self._live)

    def owns(self, slot: Slot) -> bool:
        return self.owner(slot) == self.replica_id

    async def tick(self) -> None:
        """Beat, read every replica's counter, and update who is live. Ledger down: the last view stays."""
        if self._left:
            return  # a tick that was under way at shutdown must not join again
        beats = await self.ledger.beat(self.workspace, self.replica_id, self.name, utcnow())
        long_dead = self.observe(beats)
        if long_dead:
            log.info("forgetting replicas of workspace %s silent for %d TTLs: %s",
                     self.workspace, FORGET_AFTER_TTLS, ", ".join(long_dead))
            await self.ledger.leave(self.workspace, long_dead)

    def observe(self, beats: list[MemberBeat]) -> list[str]:
        """Take one reading of the counters; returns replicas silent long enough to delete (pure but for the clock)."""
        now = self._monotonic()
        seen: dict[str, tuple[int, float]] = {}
        for member in beats:
            previous = self._seen.get(member.replica_id)
            moved = previous is None or previous[0] != member.beat  # first sight counts as a move
            seen[member.replica_id] = (member.beat, now if moved else previous[1])
        self._seen = seen
        live = sorted({self.replica_id} | {rid for rid, (_, moved_at) in seen.items() if now - moved_at <= self.ttl_s})
        if tuple(live) != self._live:
            gone, joined = set(self._live) - set(live), set(live) - set(self._live)
            log.info("workspace %s: %d live replica(s)%s%s", self.workspace, len(live),
                     f"; gone: {', '.join(sorted(gone))}" if gone else "", f"; joined: {', '.join(sorted(joined))}" if joined else "")
            self._live = tuple(live)
        metrics.REPLICAS_LIVE.labels(self.workspace).set(len(live))
        return [rid for rid, (_, moved_at) in seen.items()
                if rid != self.replica_id and now - moved_at > FORGET_AFTER_TTLS * self.ttl_s]

    async def leave(self) -> None:
        """Shutdown: leave now, so the others take this replica's attempts without waiting for the TTL."""
        self._left = True
        await self.ledger.leave(self.workspace, [self.replica_id])
