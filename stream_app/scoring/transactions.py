"""Exactly-once checkpoints: each one Kafka transaction of outputs, card state and input offsets.

In the manner of Kafka Streams' exactly-once v2: the worker's one producer is transactional, its
``transactional.id`` stable per worker instance (a restarted instance fences its predecessor and
aborts what that one left open). A transaction is always open; every ``interval_s`` it receives
the changed card state (:meth:`CardStore.cut`, written whole) and the input offsets of the
batches scored in it (``send_offsets_to_transaction`` with the consumer's group metadata, so that
a member the group has moved on from cannot commit), after the records ``before_cut`` gives
(what observers held back from its batches, :mod:`stream_app.scoring.checkpoint`), and is
committed: the batches' outputs, their state and their offsets become visible together, or not
at all, to ``read_committed`` readers (the sink, the changelog restore, the checking consumers of
tests and benchmark).

The commit's round trips (``send_offsets_to_transaction``, the flush, ``commit_transaction``) run
on a thread of their own, once the state records are produced: the loop consumes and scores the
next batch meanwhile, and before that batch's outputs are produced (and before its observers see
it) :meth:`TransactionalCheckpointer.await_commit` waits for the commit and begins the next
transaction, so that the batch's outputs, state and offsets all belong to that next one. A revoke,
a lost assignment and a stop wait for the commit in flight first.

An abortable error aborts the transaction and rewinds what it held: the consumer to the group's
committed offsets, the card state of every assigned partition to its committed changelog, so that
the same inputs are scored again onto the same state (a batch scored while the aborted commit was
in flight is dropped with them: its records are read again). A fenced producer raises
:class:`ProducerFenced`: this worker's output is over (the loop stops scoring).

While the broker is away, a call that times out is asked again (each attempt bounded by
:data:`ATTEMPT_S`): a commit for :data:`CALL_TIMEOUT_S`, then the transaction is aborted, the
abort asked again for as long as the outage lasts. A stop meanwhile gives up at the end of the
attempt, or :data:`STOP_GRACE_S` into a commit that does not return (librdkafka's
``commit_transaction`` can outlast its timeout while the broker is away: the commit's thread is a
daemon, :mod:`stream_app.kafka.blocking`): the open transaction is left to the broker, which
aborts it after ``transaction_timeout_ms`` (a worker started with the same id aborts it at once),
and its inputs are read again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from stream_app.errors import ProducerFenced
from stream_app.kafka.blocking import Abandoned, never, on_daemon_thread, wait_bounded
from stream_app.kafka.producer_calls import FENCED, serve
from stream_app.scoring.changelog import ChangelogRestorer
from stream_app.scoring.checkpoint import BeforeCut, Offsets, Uncommitted, nothing_held
from stream_app.scoring.outputs import Outputs
from stream_app.state.store import CardStore
from stream_app.timing import BATCH_BOUNDS, Distribution, StageTimes

log = logging.getLogger(__name__)

#: how long a transactional call may be asked again (retriable errors) before it fails
CALL_TIMEOUT_S = 30.0
#: how long one attempt of a transactional call may take (it is resumed by the next attempt)
ATTEMPT_S = 5.0
#: once stopping, how long a commit in flight is still waited for before it is given up on
STOP_GRACE_S = ATTEMPT_S


class TransactionalCheckpointer:
    """Commits a transaction per checkpoint: the loop's
    :class:`~stream_app.scoring.checkpoint.Checkpoints` for exactly-once."""

    def __init__(
        self,
        store: CardStore,
        consumer: Consumer,
        outputs: Outputs,
        restorer: ChangelogRestorer,
        state_topic: str,
        interval_s: float,
        before_cut: BeforeCut = nothing_held,
        stages: StageTimes | None = None,
        state_records: Distribution | None = None,
        stopping: Callable[[], bool] = never,
    ) -> None:
        """``stages`` and ``state_records``: where the commits' figures go (the loop's stats);
        ``stopping``: whether the process was asked to stop (a call then gives up)."""
        self._store = store
        self._stopping = stopping
        self._abandoned = False  # stopped with the broker away: no transaction left to use
        self._before_cut = before_cut
        self._consumer = consumer
        self._outputs = outputs
        self._producer = outputs.producer
        self._restorer = restorer
        self._state_topic = state_topic
        self._interval_s = interval_s
        self._pending: Offsets = {}  # of batches scored in the open transaction
        self._last_commit = time.monotonic()
        self.commits_dropped = 0  # transactions aborted (for /health)
        self.uncommitted = Uncommitted()
        #: where each commit's time goes, in the order of the calls: ``state`` (the changed cards
        #: encoded and produced), then on the commit's thread ``offsets``
        #: (``send_offsets_to_transaction``: the transaction and group coordinators), ``flush``
        #: (what is still unacknowledged), ``end`` (``commit_transaction``); ``wait`` (the loop
        #: waiting for them, once the next batch is scored), ``begin``; and the changelog records
        #: each commit carried
        self.stages = stages if stages is not None else StageTimes()
        self.state_records = (
            state_records if state_records is not None else Distribution(BATCH_BOUNDS)
        )
        self._in_flight: Future[None] | None = None  # the commit's round trips
        self._call(self._producer.init_transactions)  # fences an earlier instance
        self._producer.begin_transaction()

    def scored(self, next_offsets: Offsets) -> None:
        """Note the offsets after a scored batch whose outputs were produced in the transaction."""
        self._pending.update(next_offsets)
        self.uncommitted.scored()

    def step(self, batch_events: int = 0) -> bool:
        """Between batches: settle a commit that has finished, and start the next once
        ``interval_s`` after the last. True when one was started. ``batch_events`` is not used:
        the state of a transaction's cards goes with it whole."""
        if self._in_flight is not None:
            if not self._in_flight.done():
                return False
            self._settle()
        if time.monotonic() - self._last_commit < self._interval_s:
            return False
        return self._start()

    def complete(self) -> None:
        """Commit everything scored so far, now, and wait for it (revoke, stop); nothing to wait
        for if nothing was scored."""
        self._settle()
        if self._start():
            self.await_commit()

    def await_commit(self) -> bool:
        """Before a batch scored meanwhile is published: wait for the commit in flight and begin
        the next transaction. False if that commit was aborted and rewound: the batch is to be
        dropped (its records are read again, its card changes were undone)."""
        if self._in_flight is None:
            return True
        started = time.perf_counter()
        dropped = self.commits_dropped
        self._settle()
        self.stages.add("wait", time.perf_counter() - started)
        return self.commits_dropped == dropped

    def _start(self) -> bool:
        """Produce the cut's state into the open transaction and start its commit on the
        commit's thread; False if nothing was scored since the last one."""
        self._last_commit = time.monotonic()
        if not self._pending or self._abandoned:
            return False
        store, stages = self._store, self.stages
        self._outputs.send(list(self._before_cut()))  # held back from the batches: in this one
        stages.start()
        store.cut()
        state = store.take_cut()
        self._outputs.send_state(self._state_topic, state)
        self.state_records.observe(len(state))
        stages.lap("state")
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._pending.items()]
        self._pending = {}
        self.uncommitted.cut()
        try:
            self._outputs.outstanding()  # outputs refused at once: their dead letters go too
            metadata = self._consumer.consumer_group_metadata()
        except KafkaException as exc:
            self._abort(exc.args[0])
            return False
        self._in_flight = on_daemon_thread(lambda: self._commit(offsets, metadata), "commit")
        return True

    def _commit(self, offsets: list[TopicPartition], metadata: object) -> None:
        """On the commit's thread: the offsets (with the consumer's group metadata, taken on the
        loop's thread), the flush and the end of the transaction."""
        stages = self.stages
        stages.start()
        # the outputs are delivered meanwhile: the flush after it waits only for the rest
        self._call(self._producer.send_offsets_to_transaction, offsets, metadata)
        stages.lap("offsets")
        self._flush()  # commit_transaction would: timed on its own
        stages.lap("flush")
        self._call(self._producer.commit_transaction)
        stages.lap("end")

    def _flush(self) -> None:
        """Wait for the transaction's outputs to be acknowledged, :data:`ATTEMPT_S` at a time, for
        :data:`CALL_TIMEOUT_S` or until the process is asked to stop (``commit_transaction``
        then fails on what is left)."""
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while serve(self._producer.flush, ATTEMPT_S) and not self._stopping():
            if time.monotonic() > deadline:
                return

    def _settle(self) -> None:
        """Wait for the commit in flight, if any: begin the next transaction, or abort."""
        future, self._in_flight = self._in_flight, None
        if future is None:
            return
        try:
            wait_bounded(future, "transaction commit", stopping=self._stopping,
                         stop_grace_s=STOP_GRACE_S)  # fmt: skip
        except Abandoned:
            log.warning("stopping with the commit unanswered (broker away?): the open "
                        "transaction is left to the broker to abort, its inputs to be read "
                        "again")  # fmt: skip
            self._abandon()
            return
        except KafkaException as exc:
            self._abort(exc.args[0])
            return
        self.uncommitted.committed()
        self.stages.start()
        self._producer.begin_transaction()
        self.stages.lap("begin")

    def forget(self, partitions: set[tuple[str, int]]) -> None:
        """Partitions this member lost: once the commit in flight is settled, the open transaction
        holds their outputs, which must never become visible, so it is aborted (the other
        partitions rewound with it)."""
        self._settle()
        if any(tp in partitions for tp in self._pending):
            self._abort(None)

    def _abort(self, error: KafkaError | None) -> None:
        """Abort the open transaction, rewind consumer and card state to the last commit, open the
        next transaction; :class:`ProducerFenced` if this producer may not go on."""
        if error is not None:
            if error.fatal():
                raise ProducerFenced(f"transaction failed for good: {error}") from None
            log.warning("transaction aborted, rewinding to the last commit: %s", error)
        self._pending = {}
        self.uncommitted.dropped()
        if self._abandoned:  # left to the broker already: nothing more is sent
            return
        try:
            self._call(self._producer.abort_transaction, until_stopped=True)
        except KafkaException as exc:
            if exc.args[0].code() in FENCED or exc.args[0].fatal():
                raise ProducerFenced(f"transaction not aborted: {exc}") from None
            if not (exc.args[0].retriable() and self._stopping()):
                raise
            log.warning("stopping with the broker away: the open transaction is left to the "
                        "broker to abort, its inputs to be read again: %s", exc)  # fmt: skip
            self._abandon()
            return
        self._outputs.discard()
        self.commits_dropped += 1
        self._rewind()
        self._producer.begin_transaction()

    def _abandon(self) -> None:
        """Stopping with the broker away: nothing more goes into the open transaction."""
        self._abandoned = True
        self._pending = {}
        self.uncommitted.dropped()

    def _rewind(self) -> None:
        """Consumer positions to the group's committed offsets; card state to the changelog."""
        assigned = self._consumer.assignment()
        if not assigned:
            return
        for tp in self._consumer.committed(assigned, timeout=CALL_TIMEOUT_S):
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            self._restorer.restore(self._store, tp.partition)

    def _call(
        self, method: Callable[..., object], *args: object, until_stopped: bool = False
    ) -> None:
        """A transactional call, asked again while its error is retriable: for
        :data:`CALL_TIMEOUT_S`, or with ``until_stopped`` for as long as it takes; never once
        the process is asked to stop."""
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            try:
                method(*args, ATTEMPT_S)
                return
            except KafkaException as exc:
                late = not until_stopped and time.monotonic() > deadline
                if not exc.args[0].retriable() or late or self._stopping():
                    raise
                log.warning("transactional call failed, asking again: %s", exc)
