"""The hot path's I/O: consume a batch, run the pipeline, publish; checkpoint between batches.

Each batch's outputs are produced at once (the producer sends them in the background, so
decisions are not delayed), with the records the batch's observers added
(:mod:`stream_app.scoring.observers`; :meth:`ScoringLoop.run_batch` is the one place where they
see each scored batch; what they held back is produced just before each checkpoint's cut).
Checkpoints (:mod:`stream_app.scoring.checkpoint`) write the changed per-card state to its
changelog a chunk per turn and commit the input offsets only once the broker acknowledged
everything produced before them: a crash replays from the last checkpoint (the warehouse folds
replayed rows away) and never skips a record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from stream_app.codecs.retry import retry_while_unavailable
from stream_app.control.switch import ModelSwitch
from stream_app.errors import BrokerError, ProducerFenced
from stream_app.kafka.commit import close_consumer, rebalancing
from stream_app.kafka.fetch_watch import FetchWatch
from stream_app.kafka.lag import PartitionLag
from stream_app.kafka.membership import Membership
from stream_app.scoring.changelog import ChangelogRestorer
from stream_app.scoring.checkpoint import Checkpointer, Checkpoints
from stream_app.scoring.observers import BatchObserver, Observers
from stream_app.scoring.outputs import Outputs
from stream_app.scoring.pipeline import ScoredBatch, ScoringPipeline
from stream_app.scoring.poison import PoisonGuard
from stream_app.scoring.records import DeliveryCounts
from stream_app.scoring.rules_watch import RulesWatcher
from stream_app.scoring.transactions import TransactionalCheckpointer
from stream_app.timing import BATCH_BOUNDS, Distribution, StageTimes

log = logging.getLogger(__name__)

#: ``Consumer.consume``: up to ``num_messages`` records, waiting up to ``timeout`` seconds
Consume = Callable[[int, float], list[Message]]


@dataclass
class LoopStats:
    """Counters read by the health and metrics pages (written by the loop thread only)."""

    consumed: int = 0
    scored: int = 0
    dead_lettered: int = 0
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    poisoned: int = 0  # dead-lettered by the poison-pill policy (in dead_lettered too)
    observer_failures: int = 0  # observer calls that raised (scoring went on)
    observed: Counter[str] = field(default_factory=Counter)  # the observers' records, by topic
    deliveries: DeliveryCounts = field(default_factory=DeliveryCounts)
    batches: int = 0
    checkpoints: int = 0
    last_batch_seconds: float = 0.0
    last_swap_pause_ms: float | None = None  # end of the last batch on old models → next batch
    assigned: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    first_record_at: float | None = None
    first_record_cpu_s: float | None = None  # the process's CPU seconds then (a drain's start)
    stages: StageTimes = field(default_factory=StageTimes)
    batch_sizes: Distribution = field(default_factory=lambda: Distribution(BATCH_BOUNDS))
    lag: PartitionLag = field(default_factory=PartitionLag)  # by assigned partition
    fetch: FetchWatch = field(default_factory=FetchWatch)  # assigned partitions never fetched
    # for /health (time.monotonic()): the last loop turn, the last scored batch, the last turn
    # that found this consumer a member of its group, and whether records wait unconsumed
    turn_at: float = field(default_factory=time.monotonic)
    scored_at: float = field(default_factory=time.monotonic)
    member_at: float = field(default_factory=time.monotonic)
    waiting: bool = False
    uncommitted_since: float | None = None  # the oldest scored batch not yet committed
    checkpoint_interval_s: float = 0.0  # how long a scored batch may wait for its commit anyway
    commits_dropped: int = 0
    fenced: str | None = None  # why this worker's output stopped for good (exactly-once)
    #: exactly-once: time per part of a commit, and changelog records per transaction
    transaction_stages: StageTimes = field(default_factory=StageTimes)
    state_records: Distribution = field(default_factory=lambda: Distribution(BATCH_BOUNDS))


def next_batch(
    consume: Consume,
    batch_size: int,
    max_wait_s: float,
    revoked: set[tuple[str, int]],
    linger_s: float = 0.0,
) -> list[Message]:
    """What is queued now, up to ``batch_size``; if nothing is, wait up to ``max_wait_s`` for
    the first record, then take what came with it. With ``linger_s``, a batch short of
    ``batch_size`` waits up to that long for more records before it goes.

    ``Consumer.consume(n, timeout)`` only returns early once ``n`` records are queued, so one
    call with the batch's wait would hold every record of a slow stream for the whole wait; the
    linger is that hold, bounded. ``revoked`` is filled by the consumer's revoke callback, which
    runs inside ``consume``: a record of the first call whose partition the second call revoked
    is dropped, unprocessed (whoever owns the partition next reads it again from the committed
    offset). Within one call librdkafka drops such records itself.
    """
    records = consume(batch_size, 0)
    if not records:
        records = consume(1, max_wait_s)
        if not records or batch_size == 1:
            return records
    elif not linger_s or len(records) >= batch_size:
        return records
    revoked.clear()
    rest = consume(batch_size - len(records), linger_s)
    if revoked:
        records = [r for r in records if (r.topic(), r.partition()) not in revoked]
    return records + rest


class ScoringLoop:
    """Runs batches until ``stop()``; the batch in flight always finishes and is checkpointed."""

    def __init__(
        self,
        consumer: Consumer,
        producer_config: dict[str, Any],
        pipeline: ScoringPipeline,
        switch: ModelSwitch,
        restorer: ChangelogRestorer,
        rules: RulesWatcher,
        input_topic: str,
        state_topic: str,
        batch_size: int,
        max_wait_s: float,
        linger_s: float,
        checkpoint_interval_s: float,
        checkpoint_chunk_cards: int,
        poison_max_attempts: int,
        observers: Sequence[BatchObserver] = (),
        transactional: dict[str, Any] | None = None,
        fetch_watch: FetchWatch | None = None,
    ) -> None:
        """With ``transactional`` (producer settings), exactly-once: each checkpoint is a
        transaction (:mod:`stream_app.scoring.transactions`) and the model switch's status
        records, which belong to no checkpoint, go through a producer of their own.
        ``fetch_watch``: the one fed by ``consumer``'s statistics, if it was made with it."""
        self._consumer = consumer
        self.pipeline = pipeline
        self._guard = PoisonGuard(pipeline, poison_max_attempts)
        self._observers = Observers(observers)
        self.switch = switch
        self._restorer = restorer
        self.rules = rules
        self._input_topic = input_topic
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._linger_s = linger_s
        self._checkpoints: Checkpoints
        self._transactional = transactional is not None
        self._outputs = Outputs(
            {**producer_config, **(transactional or {})}, pipeline.refused_output
        )
        # status records belong to no checkpoint: in a transaction they need a producer of their own
        self._status = (
            self._outputs.producer if transactional is None else Producer(producer_config)
        )
        self.stats = LoopStats(
            deliveries=self._outputs.counts,
            observed=self._observers.produced,
            checkpoint_interval_s=checkpoint_interval_s,
            fetch=fetch_watch or FetchWatch(),
        )
        self._stopping = threading.Event()
        if transactional is None:
            self._checkpoints = Checkpointer(
                store=pipeline.store,
                consumer=consumer,
                outputs=self._outputs,
                state_topic=state_topic,
                interval_s=checkpoint_interval_s,
                chunk_cards=checkpoint_chunk_cards,
                before_cut=self._observers.flush,
                stopping=self._stopping.is_set,
            )
        else:
            self._checkpoints = TransactionalCheckpointer(
                store=pipeline.store,
                consumer=consumer,
                outputs=self._outputs,
                restorer=restorer,
                state_topic=state_topic,
                interval_s=checkpoint_interval_s,
                before_cut=self._observers.flush,
                stages=self.stats.transaction_stages,
                state_records=self.stats.state_records,
                stopping=self._stopping.is_set,
            )
        self._last_batch_end: float | None = None
        self._swap_after: float | None = None  # end of the last batch before a model swap
        self._revoked: set[tuple[str, int]] = set()  # by the revoke callback, for next_batch
        self._membership = Membership()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Reach the current models, subscribe and score until stopped, then leave cleanly."""
        self.switch.catch_up(self._status)
        self._consumer.subscribe(
            [self._input_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            self._score_until_stopped()
        except ProducerFenced as exc:
            # a supervisor restarting this worker would only fence the other one back: stay up,
            # unhealthy, out of the group, until stopped
            log.error("output stopped, leaving the group: %s", exc)
            self.stats.fenced = str(exc)
            close_consumer(self._consumer)
            self._stopping.wait()
        finally:
            if not self.stats.fenced:
                close_consumer(self._consumer)  # leaves the group: partitions move at once
            self.switch.announce_stop(self._status)
            self._restorer.close()
            self.pipeline.alerts.close()
            log.info("scoring loop stopped after %d batches", self.stats.batches)

    def _score_until_stopped(self) -> None:
        stages = self.stats.stages
        checkpoints = self._checkpoints
        while not self._stopping.is_set():
            if self.switch.between_batches(self._status):
                self._swap_after = self._last_batch_end
            self.rules.check()
            stages.start()
            records = next_batch(
                self._consumer.consume,
                self._batch_size,
                self._max_wait_s,
                self._revoked,
                self._linger_s,
            )
            stages.lap("consume")
            # before the batch: the last batch's outputs have had the wait to be acknowledged
            dropped = checkpoints.commits_dropped
            if checkpoints.step(len(records)):
                self.stats.checkpoints += 1
            if self._transactional and checkpoints.commits_dropped != dropped:
                records = []  # consumed before a rewind: read again from the committed offsets
            stages.lap("checkpoint")
            if records:
                if self.stats.first_record_at is None:
                    self.stats.first_record_at = time.time()
                    self.stats.first_record_cpu_s = time.process_time()
                self.run_batch(records)
            self._observe(bool(records))
        self.checkpoint()

    def run_batch(self, records: list[Message]) -> ScoredBatch | None:
        """Score, publish and note the offsets of one batch; ``None`` if the worker was told to
        stop while the Schema Registry was unavailable (the batch is left to the next reader), or
        if the exactly-once commit in flight while it was scored was aborted (its records are
        read again from the committed offsets)."""
        started = time.perf_counter()
        stats = self.stats
        if self._swap_after is not None:
            stats.last_swap_pause_ms = (started - self._swap_after) * 1000
            self._swap_after = None
        good = [r for r in records if not self._is_error(r)]
        result = retry_while_unavailable(
            lambda: self._guard.process(good, self.switch.models, stats.stages), self._stopping
        )
        if result is None:
            return None
        if not self._checkpoints.await_commit():  # scored during a commit that was aborted
            return None
        stats.stages.lap("checkpoint")
        if self._observers and result.events is not None:
            # the observers' records go with the batch's: acknowledged before its offsets move
            result.outputs.extend(self._observers.observe(result.events))
            stats.observer_failures = self._observers.failures
            stats.stages.lap("observe")
        self._outputs.send(result.outputs)
        self._checkpoints.scored(result.next_offsets)
        stats.stages.lap("produce")
        stats.consumed += len(good)
        stats.scored += result.scored
        stats.dead_lettered += result.dead_lettered
        stats.dead_letter_reasons.update(result.dead_letter_reasons)
        stats.alerts += result.alerts
        stats.poisoned = self._guard.poisoned
        stats.batches += 1
        stats.batch_sizes.observe(len(records))
        self._last_batch_end = time.perf_counter()
        stats.last_batch_seconds = self._last_batch_end - started
        log.debug(
            "batch of %d: %d scored, %d dead-lettered, %d alerts in %.1f ms",
            len(records),
            result.scored,
            result.dead_lettered,
            result.alerts,
            stats.last_batch_seconds * 1000,
        )
        return result

    def checkpoint(self) -> None:
        """Checkpoint everything scored so far, now: state changelog → every output acknowledged
        → input offsets committed, in that order."""
        stages = self.stats.stages
        stages.start()
        self._checkpoints.complete()
        self.stats.checkpoints += 1
        stages.lap("checkpoint")

    def _observe(self, scored: bool) -> None:
        """Note this turn for /health and /metrics: membership (at most once a second), the lag
        per partition (every idle turn, at most once a second while scoring) and, on an idle
        turn, whether an assigned partition holds records beyond the position."""
        stats = self.stats
        now = time.monotonic()
        stats.commits_dropped = self._checkpoints.commits_dropped
        stats.uncommitted_since = self._checkpoints.uncommitted.since
        if self._membership.confirmed(self._consumer, now):
            stats.member_at = now
        lag = stats.lag.update(self._consumer, force=not scored)
        if scored:
            stats.scored_at = now
            stats.waiting = False
        else:
            stats.waiting = any(lag.values())
        stats.turn_at = now

    def _is_error(self, record: Message) -> bool:
        error = record.error()
        if error is None:
            return False
        if error.fatal():
            raise BrokerError(f"fatal consumer error: {error}")
        log.warning("consumer error: %s", error)
        return True

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Restore each partition's card state before its first record is scored."""
        for tp in partitions:
            self._restorer.restore(self.pipeline.store, tp.partition)
        self.stats.assigned = sorted(f"{p.topic}:{p.partition}" for p in partitions)
        log.info("assigned %s", self.stats.assigned)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Checkpoint before the partitions move: the next owner restores complete state."""
        log.info("revoked %s", sorted(f"{p.topic}:{p.partition}" for p in partitions))
        if not self.stats.fenced:  # a fenced producer has nothing left to commit
            with rebalancing():
                self.checkpoint()
        for tp in partitions:
            self.pipeline.store.drop(tp.partition)
            self._revoked.add((tp.topic, tp.partition))
        self.stats.assigned = []

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The group moved on without this member (session expired, broker restarted): nothing
        of these partitions can be committed any more. Their uncommitted offsets and state are
        dropped (the next owner replays from the last commit); the client rejoins by itself."""
        lost = {(tp.topic, tp.partition) for tp in partitions}
        log.warning("lost %s: uncommitted work dropped, the next owner replays it", sorted(lost))
        if not self.stats.fenced:  # a fenced producer has no transaction left to abort
            self._checkpoints.forget(lost)
        for tp in partitions:
            self.pipeline.store.drop(tp.partition)
        self._revoked |= lost
        self.stats.assigned = []
