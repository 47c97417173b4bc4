"""The warehouse sink: the only writer of the warehouse.

Consumes the transactions and the workers' output topics, maps records to rows, inserts in
batches flushed by size or age, and commits offsets only after the insert returned. A replay
after a crash re-inserts rows the ReplacingMergeTree tables fold away.

Nothing the warehouse or the group does stops it: rows the warehouse refuses are parked by the
sinks; while it cannot write (:class:`WarehouseUnavailable`) the rows stay buffered, consumption
pauses, offsets stay uncommitted and the insert is retried with a growing backoff; a lost group
membership (a pause past the session timeout) drops what was not committed, to be read again
once the consumer has rejoined. A Schema Registry that does not answer
(:class:`SchemaRegistryUnavailable`) is waited for the same way: the records not yet mapped are
held, consumption pauses, their offsets stay uncommitted and the mapping is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from stream_app.errors import (
    BrokerError,
    CodecError,
    SchemaRegistryUnavailable,
    WarehouseUnavailable,
)
from stream_app.kafka.commit import close_consumer, commit_offsets, rebalancing
from stream_app.kafka.fetch_watch import FetchWatch
from stream_app.kafka.lag import PartitionLag
from stream_app.outage import Outage
from stream_app.sinks.base import Row, Sink
from stream_app.timing import StageTimes, now_ms
from stream_app.warehouse.rows import BatchRowMapper, RowMapper

log = logging.getLogger(__name__)

#: the longest a consume waits for records; the flush is due-checked after each one
CONSUME_WAIT_S = 0.1
#: a record that no longer decodes is logged the first time, then one in this many (the counter
#: ``undecodable`` has them all): a flood of them is never one log line each
UNDECODABLE_LOG_EVERY = 1000


@dataclass(frozen=True)
class Route:
    """Where one topic's records go."""

    topic: str
    to_row: RowMapper
    sink: Sink
    to_rows: BatchRowMapper | None = None  # the same rows for a whole poll at once, if it can


@dataclass
class IngestStats:
    consumed: int = 0
    unwritten: int = 0  # records read and not yet covered by a completed flush
    unwritten_since: float | None = None  # monotonic seconds the oldest of them was read
    stored: dict[str, int] = field(default_factory=dict)
    undecodable: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # rows parked, by topic
    labels_by_source: dict[str, int] = field(default_factory=dict)  # label rows stored
    failed_inserts: int = 0  # flushes the warehouse could not take (retried)
    unwritable_since: float | None = None  # epoch seconds of the first failure of a run of them
    registry_unavailable_since: float | None = None  # records wait for the Schema Registry
    failed_commits: int = 0
    lost_assignments: int = 0  # group memberships lost (e.g. paused past the session timeout)
    flushes: int = 0
    last_flush_seconds: float = 0.0
    stages: StageTimes = field(default_factory=StageTimes)
    lag: PartitionLag = field(default_factory=PartitionLag)  # by assigned partition
    fetch: FetchWatch = field(default_factory=FetchWatch)  # assigned partitions never fetched

    def as_dict(self) -> dict[str, object]:
        return {
            "consumed": self.consumed,
            "unwritten": self.unwritten,
            "stored": self.stored,
            "undecodable": self.undecodable,
            "rejected": self.rejected,
            "labels_by_source": self.labels_by_source,
            "failed_inserts": self.failed_inserts,
            "unwritable_since": self.unwritable_since,
            "registry_unavailable_since": self.registry_unavailable_since,
            "failed_commits": self.failed_commits,
            "lost_assignments": self.lost_assignments,
            "flushes": self.flushes,
            "stage_seconds": self.stages.snapshot(),
        }


class WarehouseIngest:
    """Batches records into sinks; commit order is always: sinks flushed → offsets committed."""

    def __init__(
        self,
        consumer: Consumer,
        routes: list[Route],
        batch_rows: int,
        flush_interval_s: float,
        stats: IngestStats | None = None,
    ) -> None:
        self._consumer = consumer
        self._routes = {route.topic: route for route in routes}
        self._batch_rows = batch_rows
        self._flush_interval_s = flush_interval_s
        self._pending_offsets: dict[tuple[str, int], int] = {}
        self._warehouse = Outage()  # inserts failing: rows buffered, retried
        self._registry = Outage()  # the Schema Registry silent: records held unmapped, retried
        self._unmapped: list[Message] = []
        self._stopping = threading.Event()
        self.stats = stats or IngestStats()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        self._consumer.subscribe(
            list(self._routes),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not self._stopping.is_set():
                self.poll_once()
            self.flush()
        finally:
            close_consumer(self._consumer)
            for route in self._routes.values():
                route.sink.close()

    def poll_once(self) -> None:
        """Consume what is there (≤ CONSUME_WAIT_S), then flush if the batch is big or old
        enough."""
        stages = self.stats.stages
        stages.start()
        records = self._consumer.consume(self._batch_rows, CONSUME_WAIT_S)
        self.stats.lag.update(self._consumer)
        stages.lap("consume")
        for record in records:
            error = record.error()
            if error is None:
                self._unmapped.append(record)
            elif error.fatal():
                raise BrokerError(f"fatal consumer error: {error}")
            else:
                log.warning("consumer error: %s", error)
        if records:
            self.stats.consumed += len(records)
            self.stats.unwritten += len(records)
            if self.stats.unwritten_since is None:
                self.stats.unwritten_since = time.monotonic()
        if self._registry.since is None or self._registry.due():
            self._map_unmapped()
        stages.lap("decode")
        pending = sum(route.sink.pending for route in self._routes.values())
        oldest = self.stats.unwritten_since
        age = time.monotonic() - oldest if oldest is not None else 0.0
        if self._warehouse.since is not None:
            due = self._warehouse.due()
        else:
            due = pending >= self._batch_rows or bool(
                self._pending_offsets and age >= self._flush_interval_s
            )
        if due:
            self.flush()

    def _map_unmapped(self) -> None:
        """Rows of the held records into their sinks, in log order; a record is pending (its
        offset to commit) once mapped. A silent Schema Registry holds it and those after it."""
        ingested = now_ms()
        mapped = self._map_batches(ingested)
        rows: dict[str, list[Row]] = {}
        for index, record in enumerate(self._unmapped):
            topic, partition, offset = (
                record.topic() or "",
                record.partition() or 0,
                record.offset() or 0,
            )
            route = self._routes[topic]
            try:
                row = mapped[index] if index in mapped else route.to_row(record, ingested)
            except SchemaRegistryUnavailable as exc:
                self._unmapped = self._unmapped[index:]
                self._add(rows)
                self._registry_failed(exc)
                return
            except CodecError as exc:  # a record a worker wrote that no longer decodes
                self.stats.undecodable += 1
                if self.stats.undecodable % UNDECODABLE_LOG_EVERY == 1:
                    log.error(
                        "%s[%d]@%d not stored (%d undecodable so far, 1 in %d logged): %s",
                        *(topic, partition, offset, self.stats.undecodable),
                        *(UNDECODABLE_LOG_EVERY, exc),
                    )
                row = None
            self._pending_offsets[(topic, partition)] = offset + 1
            if row is not None:
                rows.setdefault(topic, []).append(row)
        self._unmapped = []
        self._add(rows)
        if self._registry.ended():
            log.info("Schema Registry answers again: held records mapped")
            self.stats.registry_unavailable_since = None
            self._resume_if_clear()

    def _map_batches(self, ingested: int) -> dict[int, Row | None]:
        """The rows of the held records whose route maps a whole poll at once, by index."""
        by_topic: dict[str, list[int]] = {}
        for index, record in enumerate(self._unmapped):
            by_topic.setdefault(record.topic() or "", []).append(index)
        mapped: dict[int, Row | None] = {}
        for topic, indexes in by_topic.items():
            to_rows = self._routes[topic].to_rows
            if to_rows is not None:
                rows = to_rows([self._unmapped[i] for i in indexes], ingested)
                if rows is not None:
                    mapped.update(zip(indexes, rows, strict=True))
        return mapped

    def _add(self, rows: dict[str, list[Row]]) -> None:
        for topic, topic_rows in rows.items():
            self._routes[topic].sink.add(topic_rows)

    def _registry_failed(self, error: SchemaRegistryUnavailable) -> None:
        log.error("%s: %d records held, retrying in %.1fs (offsets not committed)",
                  error, len(self._unmapped), self._registry.backoff_s)  # fmt: skip
        if self._registry.failed():
            self.stats.registry_unavailable_since = self._registry.since
            self._consumer.pause(self._consumer.assignment())

    def _resume_if_clear(self) -> None:
        """Consume again once neither the warehouse nor the Schema Registry holds it back."""
        if self._warehouse.since is None and self._registry.since is None:
            self._consumer.resume(self._consumer.assignment())

    def flush(self) -> bool:
        """Insert every buffered row, then commit the offsets of the records they came from.

        False when the warehouse could not take the rows: they stay buffered, the offsets
        uncommitted, consumption paused, and :meth:`poll_once` tries again after a backoff.
        """
        started = time.perf_counter()
        stages = self.stats.stages
        stages.start()
        try:
            self._insert()
        except WarehouseUnavailable as exc:
            self._insert_failed(exc)
            return False
        stages.lap("insert")
        if self._warehouse.ended():
            log.info("warehouse writable again: buffered rows written")
            self.stats.unwritable_since = None
            self._resume_if_clear()
        self._commit()
        stages.lap("commit")
        self._written()
        self.stats.flushes += 1
        self.stats.last_flush_seconds = time.perf_counter() - started
        return True

    def _written(self) -> None:
        """Every record read is written, or dropped to be read again, but those held for the
        Schema Registry: they still wait, since they were read."""
        self.stats.unwritten = len(self._unmapped)
        if not self._unmapped:
            self.stats.unwritten_since = None

    def _insert(self) -> None:
        for route in self._routes.values():
            parked_before = route.sink.rejected
            try:
                written = route.sink.flush()
            finally:
                if parked := route.sink.rejected - parked_before:
                    self.stats.rejected[route.topic] = (
                        self.stats.rejected.get(route.topic, 0) + parked
                    )
            if written:
                self.stats.stored[route.topic] = self.stats.stored.get(route.topic, 0) + written

    def _insert_failed(self, error: WarehouseUnavailable) -> None:
        self.stats.failed_inserts += 1
        log.error("warehouse insert failed, retrying in %.1fs (offsets not committed): %s",
                  self._warehouse.backoff_s, error)  # fmt: skip
        if self._warehouse.failed():
            self.stats.unwritable_since = self._warehouse.since
            self._consumer.pause(self._consumer.assignment())

    def _commit(self) -> None:
        """Commit what was written (through a broker restart: :mod:`stream_app.kafka.commit`); a
        commit the group refuses leaves the rows to a replay, which the tables fold away."""
        if not self._pending_offsets:
            return
        offsets, self._pending_offsets = self._pending_offsets, {}
        try:
            committed = commit_offsets(self._consumer, offsets, stopping=self._stopping.is_set)
        except KafkaException as exc:
            if exc.args[0].fatal():
                raise BrokerError(f"fatal commit error: {exc.args[0]}") from exc
            committed = False
            log.warning("commit refused (the rows are written; a replay folds away): %s", exc)
        if not committed:
            self.stats.failed_commits += 1

    def _discard(self, why: str) -> None:
        """Forget what was read and not committed: it is read again after the (re)assignment."""
        dropped = sum(route.sink.discard() for route in self._routes.values())
        dropped += len(self._unmapped)
        self._pending_offsets, self._unmapped = {}, []
        self._written()
        log.warning("%s: %d uncommitted rows dropped, to be read again", why, dropped)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", sorted(f"{p.topic}:{p.partition}" for p in partitions))

    def _on_revoke(self, _consumer: Consumer, _partitions: list[TopicPartition]) -> None:
        # rows of revoked partitions are written and committed before they move, if they can be;
        # records held for the Schema Registry are read again by the partitions' next owner
        with rebalancing():
            flushed = self.flush()
        if not flushed:
            self._discard("partitions revoked while the warehouse cannot be written")
        elif self._unmapped:
            self._unmapped = []
            self._written()
            log.warning("partitions revoked while the Schema Registry is silent: held records "
                        "left to be read again")  # fmt: skip

    def _on_lost(self, _consumer: Consumer, _partitions: list[TopicPartition]) -> None:
        # the group moved on without this member (its offsets can no longer be committed)
        self.stats.lost_assignments += 1
        self._discard("group membership lost")
