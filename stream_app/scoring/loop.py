"""The hot path's I/O: consume a batch, run the pipeline, publish, then commit.

Offsets are committed only after the broker acknowledged every output of the batch, so a crash
replays the batch (the warehouse deduplicates) and never skips it. Each batch is committed before
the next ``consume``, so a rebalance (whose callbacks run inside ``consume``) finds nothing pending.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from stream_app.control.switch import ModelSwitch
from stream_app.errors import BrokerError
from stream_app.scoring.pipeline import ScoredBatch, ScoringPipeline
from stream_app.timing import StageTimes

log = logging.getLogger(__name__)


@dataclass
class LoopStats:
    """Counters read by the health and metrics pages (written by the loop thread only)."""

    consumed: int = 0
    scored: int = 0
    dead_lettered: int = 0
    batches: int = 0
    last_batch_seconds: float = 0.0
    assigned: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    first_record_at: float | None = None
    stages: StageTimes = field(default_factory=StageTimes)


class ScoringLoop:
    """Runs batches until ``stop()``; the batch in flight always finishes and commits first."""

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        pipeline: ScoringPipeline,
        switch: ModelSwitch,
        input_topic: str,
        batch_size: int,
        max_wait_s: float,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self.pipeline = pipeline
        self.switch = switch
        self._input_topic = input_topic
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._stopping = threading.Event()
        self._delivery_error: KafkaError | None = None
        self.stats = LoopStats()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Reach the current models, subscribe and score until stopped, then leave cleanly."""
        self.switch.catch_up()
        self._consumer.subscribe(
            [self._input_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        try:
            stages = self.stats.stages
            while not self._stopping.is_set():
                self.switch.between_batches(self._producer)
                stages.start()
                records = self._consumer.consume(self._batch_size, self._max_wait_s)
                if records:
                    stages.lap("consume")
                    if self.stats.first_record_at is None:
                        self.stats.first_record_at = time.time()
                    self.run_batch(records)
        finally:
            self._producer.flush(30)
            self._consumer.close()  # leaves the group: partitions move at once
            self.switch.announce_stop(self._producer)
            log.info("scoring loop stopped after %d batches", self.stats.batches)

    def run_batch(self, records: list[Message]) -> ScoredBatch:
        started = time.perf_counter()
        stats = self.stats
        good = [r for r in records if not self._is_error(r)]
        result = self.pipeline.process(good, self.switch.models, stats.stages)
        self._publish(result)
        stats.stages.lap("produce")
        if result.next_offsets:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in result.next_offsets.items()],
                asynchronous=False,
            )
        stats.stages.lap("commit")
        stats.consumed += len(good)
        stats.scored += result.scored
        stats.dead_lettered += result.dead_lettered
        stats.batches += 1
        stats.last_batch_seconds = time.perf_counter() - started
        return result

    def _publish(self, result: ScoredBatch) -> None:
        produce = self._producer.produce
        for out in result.outputs:
            while True:
                try:
                    produce(
                        out.topic,
                        out.value,
                        out.key,
                        headers=out.headers,
                        on_delivery=self._on_delivery,
                    )
                    break
                except BufferError:  # local queue full: let deliveries drain
                    self._producer.poll(0.05)
        remaining = self._producer.flush(60)
        if remaining or self._delivery_error is not None:
            raise BrokerError(
                f"outputs not acknowledged ({remaining} pending, error {self._delivery_error}); "
                "input offsets were not committed"
            )

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None and self._delivery_error is None:
            self._delivery_error = error

    def _is_error(self, record: Message) -> bool:
        error = record.error()
        if error is None:
            return False
        if error.fatal():
            raise BrokerError(f"fatal consumer error: {error}")
        log.warning("consumer error: %s", error)
        return True

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.assigned = sorted(f"{p.topic}:{p.partition}" for p in partitions)
        log.info("assigned %s", self.stats.assigned)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Every batch is produced, acknowledged and committed before the next consume() call,
        # and rebalance callbacks run inside consume(): there is nothing left to flush here.
        log.info("revoked %s", sorted(f"{p.topic}:{p.partition}" for p in partitions))
        self.stats.assigned = []
