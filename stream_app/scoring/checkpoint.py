"""Checkpoints of the scoring loop: card state to its changelog, then the input offsets committed.

A checkpoint is *cut* between two batches, at most every ``interval_s``: the input offsets of the
batches scored so far, and the cards they changed (:meth:`CardStore.cut`). Its changelog records
are produced a chunk per turn of the loop, so that writing the state of thousands of cards never
holds the next batch up for long (a card that a later batch changes is encoded as it was at the
cut, just before the change): the records of up to ``chunk_cards`` cards, and of no more than
:data:`CARDS_PER_EVENT` per event of the turn's batch (a chunk of 256 cards held each small batch
of a paced stream up by ~3 ms: docs/benchmarks.md). No more cards change between two cuts than
events are scored, so with batches under ``chunk_cards / CARDS_PER_EVENT`` events a cut is
written before the next one is due; larger batches write ``chunk_cards`` a turn, as before this
bound. Just before the cut,
``before_cut`` gives the records of what observers held back from the batches
(:class:`~stream_app.scoring.observers.HoldingObserver`: the drift monitors' rows), produced
then, so that the state cut has read every row of the cut's offsets and those records are
acknowledged before the offsets move. Once all are produced and the producer has nothing
outstanding (failed deliveries sent again or replaced and acknowledged, see
:mod:`stream_app.scoring.outputs`), the cut's offsets are committed, synchronously; a producer
that is never idle (a backlog) is flushed once the cut is ``interval_s`` old. A crash replays
from the last committed checkpoint, so no record is skipped; state written for a cut whose
offsets were not committed yet counts the replayed events of its cards twice (at-least-once). On
revoke and stop, :meth:`Checkpointer.complete` does all of it at once.

While the broker is away, a cut whose outputs are not acknowledged waits, a second's flush
per turn, for as long as the outage lasts; its offsets are committed once they are. On revoke and
stop the wait is bounded (:data:`COMPLETE_TIMEOUT_S`): a stop during an outage leaves the last
offsets uncommitted, to be read again by the partitions' next owner, rather than holding the
stop up (or failing the worker) for as long as the outage lasts.

The commit goes through :func:`stream_app.kafka.commit.commit_offsets`: tried again while the
group coordinator is away (a broker restart), until asked to stop; dropped when the group
refuses it because this member lost its membership (the partitions' next owner replays them,
the client rejoins, the loop goes on); any other commit error stops the worker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from confluent_kafka import Consumer

from stream_app.kafka.blocking import never
from stream_app.kafka.commit import commit_offsets
from stream_app.scoring.outputs import Outputs
from stream_app.scoring.records import OutputRecord
from stream_app.state.store import CardStore

log = logging.getLogger(__name__)

#: how long a turn waits for the outputs of a cut that is due, before the loop goes on
FLUSH_WAIT_S = 1.0
#: a turn that scores a batch writes the state of at most this many cards per event of it
CARDS_PER_EVENT = 2
#: on revoke and stop, how long the outputs may take to be acknowledged and the offsets committed
#: before they are left to a replay (within the 30 s a supervisor commonly gives a stop)
COMPLETE_TIMEOUT_S = 5.0

#: next offset to read per (topic, partition)
Offsets = dict[tuple[str, int], int]
#: what a checkpoint produces just before its cut: records held back from the batches
BeforeCut = Callable[[], Sequence[OutputRecord]]


def nothing_held() -> Sequence[OutputRecord]:
    """A :data:`BeforeCut` for a loop whose observers hold nothing back."""
    return ()


class Checkpoints(Protocol):
    """What the scoring loop asks of its checkpoints, whichever the guarantee: :class:`Checkpointer`
    (at-least-once) or :class:`~stream_app.scoring.transactions.TransactionalCheckpointer`
    (exactly-once)."""

    #: commits given up on (membership lost, or a transaction aborted), for ``/health``
    commits_dropped: int
    uncommitted: Uncommitted

    def scored(self, next_offsets: Offsets) -> None:
        """Note the offsets after a scored batch whose outputs were produced."""

    def step(self, batch_events: int = 0) -> bool:
        """Between batches (``batch_events``: of the batch about to be scored, 0 on an idle
        turn): a bounded piece of checkpointing; True when a checkpoint completed or started."""

    def complete(self) -> None:
        """Checkpoint everything scored so far, now (revoke, stop)."""

    def await_commit(self) -> bool:
        """Before a batch scored meanwhile is published: False if it is to be dropped (scored
        during a commit that was aborted)."""

    def forget(self, partitions: set[tuple[str, int]]) -> None:
        """Drop what is uncommitted of partitions this member lost."""


class Uncommitted:
    """Since when scored batches wait for their commit (for ``/health``): those scored since the
    last cut, and those of the cut being committed, each dated by their oldest batch."""

    def __init__(self) -> None:
        self._pending_since: float | None = None
        self._cut_since: float | None = None

    @property
    def since(self) -> float | None:
        """Monotonic time the oldest uncommitted batch was scored; None if none waits."""
        dates = [d for d in (self._cut_since, self._pending_since) if d is not None]
        return min(dates, default=None)

    def scored(self) -> None:
        if self._pending_since is None:
            self._pending_since = time.monotonic()

    def cut(self) -> None:
        """The batches scored so far are in the checkpoint being committed."""
        self._cut_since, self._pending_since = self._pending_since, None

    def committed(self) -> None:
        self._cut_since = None

    def dropped(self) -> None:
        """Nothing waits any more: left to a replay (rewound, or given up on a stop)."""
        self._cut_since = self._pending_since = None


class Checkpointer:
    """Cuts, writes and commits checkpoints for a scoring loop, a bounded piece per :meth:`step`."""

    def __init__(
        self,
        store: CardStore,
        consumer: Consumer,
        outputs: Outputs,
        state_topic: str,
        interval_s: float,
        chunk_cards: int,
        before_cut: BeforeCut = nothing_held,
        stopping: Callable[[], bool] = never,
    ) -> None:
        self._store = store
        self._stopping = stopping
        self._before_cut = before_cut
        self._consumer = consumer
        self._outputs = outputs
        self._state_topic = state_topic
        self._interval_s = interval_s
        self._chunk_cards = chunk_cards
        self._pending: Offsets = {}  # of batches scored since the cut
        self._cut_offsets: Offsets | None = None  # of the cut being written, if any
        self._cut_at = self._last_commit = time.monotonic()
        self._waiting = False  # the cut's outputs not acknowledged after a flush (warned once)
        self.commits_dropped = 0  # refused because the membership was lost (for /health)
        self.uncommitted = Uncommitted()

    def scored(self, next_offsets: Offsets) -> None:
        """Note the offsets after a scored batch whose outputs have been produced."""
        self._pending.update(next_offsets)
        self.uncommitted.scored()

    def step(self, batch_events: int = 0) -> bool:
        """Between batches (``batch_events``: of the batch about to be scored, 0 on an idle
        turn): cut when due, write one chunk, or commit a written cut once the producer is idle
        (flushing it if the cut is ``interval_s`` old). True when a checkpoint completed (one with
        no new offsets included)."""
        now = time.monotonic()
        if self._cut_offsets is None:
            if now - self._last_commit < self._interval_s:
                return False
            self._cut()
            self._cut_offsets, self._pending = self._pending, {}
            self.uncommitted.cut()
            self._cut_at = now
        if self._store.cut_pending():
            chunk = self._chunk_cards
            if batch_events:
                chunk = min(chunk, CARDS_PER_EVENT * batch_events)
            self._write(self._store.take_cut(chunk))
            return False
        if self._outputs.outstanding():
            if now - self._cut_at < self._interval_s:
                return False
            self._outputs.flush(FLUSH_WAIT_S)  # never idle (a backlog): wait for what it holds
            if not self._outputs.acknowledged():  # the broker away: wait on, a turn at a time
                if not self._waiting:
                    log.warning("checkpoint waiting: outputs not acknowledged after %.1fs "
                                "(broker away?); offsets committed once they are",
                                now - self._cut_at)  # fmt: skip
                self._waiting = True
                return False
        self._commit(self._cut_offsets)
        return True

    def complete(self) -> None:
        """Checkpoint everything scored so far, now (revoke, stop); returns once committed, or
        after :data:`COMPLETE_TIMEOUT_S` with the offsets left to a replay if the outputs were
        not all acknowledged by then (the broker away)."""
        store, outputs = self._store, self._outputs
        offsets = {**(self._cut_offsets or {}), **self._pending}
        # with no offsets to commit (nothing scored, or its partitions lost) nothing waits for
        # the outputs: a stop during an outage would only wait out the timeout
        deadline = time.monotonic() + (COMPLETE_TIMEOUT_S if offsets else 0.0)
        if store.cut_pending():  # acknowledged before a newer record of the same card is sent
            self._write(store.take_cut())
            outputs.flush(max(0.0, deadline - time.monotonic()))
        self._cut()
        self._write(store.take_cut())
        outputs.flush(max(0.0, deadline - time.monotonic()))
        self._pending = {}
        self.uncommitted.cut()
        if outputs.acknowledged():
            self._commit(offsets)
            return
        self.uncommitted.dropped()
        self._cut_offsets, self._waiting = None, False
        if not offsets:
            return
        log.warning("outputs not acknowledged within %.0fs (broker away?): offsets of %d "
                    "partitions not committed, to be read again", COMPLETE_TIMEOUT_S,
                    len(offsets))  # fmt: skip

    def await_commit(self) -> bool:
        """Always True: no commit is ever in flight while a batch is scored (the calls of
        :class:`~stream_app.scoring.transactions.TransactionalCheckpointer`)."""
        return True

    def forget(self, partitions: set[tuple[str, int]]) -> None:
        """Drop the uncommitted offsets of partitions this member lost: their next owner
        replays from the last committed offsets."""
        self._pending = {tp: o for tp, o in self._pending.items() if tp not in partitions}
        if self._cut_offsets is not None:
            cut = self._cut_offsets.items()
            self._cut_offsets = {tp: o for tp, o in cut if tp not in partitions}

    def _cut(self) -> None:
        """Produce what was held back from the batches, then cut the card state."""
        self._outputs.send(list(self._before_cut()))
        self._store.cut()

    def _write(self, records: list[tuple[int, bytes, bytes | None]]) -> None:
        self._outputs.send_state(self._state_topic, records)

    def _commit(self, offsets: Offsets) -> None:
        """Commit ``offsets`` if every output was acknowledged or settled: one still pending
        stops here, before its input offsets move."""
        self._outputs.check_acknowledged()
        if offsets and not commit_offsets(self._consumer, offsets, stopping=self._stopping):
            self.commits_dropped += 1  # the partitions' next owner replays them
        self._cut_offsets = None
        self._waiting = False
        self._last_commit = time.monotonic()
        self.uncommitted.committed()
