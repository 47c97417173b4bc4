"""The warehouse sink: the only writer of the warehouse.

Consumes the transactions and the workers' output topics, maps records to rows, inserts in
batches flushed by size or age, and commits offsets only after the insert returned. A replay
after a crash re-inserts rows the ReplacingMergeTree tables fold away.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from stream_app.errors import BrokerError, CodecError
from stream_app.kafka.commit import commit_offsets
from stream_app.sinks.base import Sink
from stream_app.timing import StageTimes
from stream_app.warehouse.rows import RowMapper, now_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """Where one topic's records go."""

    topic: str
    to_row: RowMapper
    sink: Sink


@dataclass
class IngestStats:
    consumed: int = 0
    stored: dict[str, int] = field(default_factory=dict)
    undecodable: int = 0
    flushes: int = 0
    last_flush_seconds: float = 0.0
    stages: StageTimes = field(default_factory=StageTimes)

    def as_dict(self) -> dict[str, object]:
        return {
            "consumed": self.consumed,
            "stored": self.stored,
            "undecodable": self.undecodable,
            "flushes": self.flushes,
            "stage_seconds": self.stages.snapshot(),
        }


class WarehouseIngest:
    """Batches records into sinks; commit order is always: sinks flushed → offsets committed."""

    def __init__(
        self, consumer: Consumer, routes: list[Route], batch_rows: int, flush_interval_s: float
    ) -> None:
        self._consumer = consumer
        self._routes = {route.topic: route for route in routes}
        self._batch_rows = batch_rows
        self._flush_interval_s = flush_interval_s
        self._pending_offsets: dict[tuple[str, int], int] = {}
        self._oldest_pending: float | None = None
        self._stopping = threading.Event()
        self.stats = IngestStats()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        self._consumer.subscribe(list(self._routes), on_revoke=self._on_revoke)
        try:
            while not self._stopping.is_set():
                self.poll_once()
            self.flush()
        finally:
            self._consumer.close()

    def poll_once(self) -> None:
        """Consume what is there (≤ 100 ms wait), then flush if the batch is big or old enough."""
        stages = self.stats.stages
        stages.start()
        records = self._consumer.consume(self._batch_rows, 0.1)
        stages.lap("consume")
        ingested = now_ms()
        for record in records:
            error = record.error()
            if error is not None:
                if error.fatal():
                    raise BrokerError(f"fatal consumer error: {error}")
                log.warning("consumer error: %s", error)
                continue
            topic, partition, offset = (
                record.topic() or "",
                record.partition() or 0,
                record.offset() or 0,
            )
            self._pending_offsets[(topic, partition)] = offset + 1
            route = self._routes[topic]
            try:
                row = route.to_row(record, ingested)
            except CodecError as exc:  # a record a worker wrote that no longer decodes
                self.stats.undecodable += 1
                log.error("%s[%d]@%d not stored: %s", topic, partition, offset, exc)
                continue
            if row is not None:
                route.sink.add([row])
        stages.lap("decode")
        if records:
            self.stats.consumed += len(records)
            if self._oldest_pending is None:
                self._oldest_pending = time.monotonic()
        pending = sum(route.sink.pending for route in self._routes.values())
        age = time.monotonic() - self._oldest_pending if self._oldest_pending else 0.0
        if pending >= self._batch_rows or (self._pending_offsets and age >= self._flush_interval_s):
            self.flush()

    def flush(self) -> None:
        """Insert every buffered row, then commit the offsets of the records they came from."""
        started = time.perf_counter()
        stages = self.stats.stages
        stages.start()
        for route in self._routes.values():
            written = route.sink.flush()
            if written:
                self.stats.stored[route.topic] = self.stats.stored.get(route.topic, 0) + written
        stages.lap("insert")
        if self._pending_offsets:
            commit_offsets(self._consumer, self._pending_offsets)
            self._pending_offsets = {}
        stages.lap("commit")
        self._oldest_pending = None
        self.stats.flushes += 1
        self.stats.last_flush_seconds = time.perf_counter() - started

    def _on_revoke(self, _consumer: Consumer, _partitions: list[TopicPartition]) -> None:
        self.flush()  # rows of revoked partitions are written and committed before they move
