"""The yardstick: the same job as worker + sink in one thread, with no framework.

consume(5000) → msgspec JSON decode → features (per-card state included) →
``predict(num_threads=1)`` → one JSON prediction per event → flush → insert the events and
predictions rows (the sink's tables) → commit. Minimal on purpose, and no strawman: batched
wherever batching is the obvious thing. Unlike the worker it runs no alert rules and writes no
card-state changelog.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from models.registry import FileModelStore
from stream_app.bench.errors import BenchError
from stream_app.bench.stack import BenchStack
from stream_app.events import Transaction, TransactionBatch
from stream_app.features import compute_features
from stream_app.kafka.config import consumer_config, producer_config
from stream_app.produce import ProduceOptions, produce
from stream_app.scoring.model import LoadedModel, load_model
from stream_app.state import CardStore, batch_velocity_features
from stream_app.warehouse.client import connect
from stream_app.warehouse.schema import EVENTS, PREDICTIONS, create_statements


class BarePrediction(msgspec.Struct):
    event_id: str
    card_id: str
    event_time: int
    input_create_time: int
    score: float
    decision: str
    model_version: str
    scored_time: int


@dataclass
class BareLoop:
    consumer: Consumer
    producer: Producer
    output_topic: str
    model: LoadedModel
    client: Client
    database: str
    store: CardStore = field(default_factory=CardStore)

    def run(self, events: int) -> float:
        """Score ``events`` records; seconds from the first record consumed to the last commit."""
        decode = msgspec.json.Decoder(Transaction).decode
        done, first, idle_until = 0, 0.0, time.monotonic() + 90
        while done < events:
            records = [r for r in self.consumer.consume(5000, 0.05) if r.error() is None]
            if not records:
                if time.monotonic() > idle_until:
                    raise BenchError(f"bare loop: {done:,} of {events:,} records in 90s")
                continue
            first = first or time.perf_counter()
            batch = TransactionBatch.from_transactions([decode(r.value() or b"") for r in records])
            velocity = batch_velocity_features(
                self.store,
                [r.partition() or 0 for r in records],
                batch.card_id,
                batch.merchant_id,
                batch.amount,
                batch.event_time,
            )
            features = compute_features(batch, velocity)
            scores = np.asarray(self.model.booster.predict(features, num_threads=1))
            self._publish_and_store(records, batch, scores.tolist())
            last = {(r.topic() or "", r.partition() or 0): r.offset() or 0 for r in records}
            offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
            self.consumer.commit(offsets=offsets, asynchronous=False)
            done += len(records)
        return time.perf_counter() - first

    def _publish_and_store(
        self, records: list[Message], batch: TransactionBatch, scores: list[float]
    ) -> None:
        model, encode, now, n = self.model, msgspec.json.encode, int(time.time() * 1000), len(batch)
        created = [r.timestamp()[1] for r in records]
        decisions = ["decline" if s >= model.threshold else "approve" for s in scores]
        event_time = batch.event_time.tolist()
        columns_in = (batch.event_id, batch.card_id, event_time, created, scores, decisions)
        for record, event_id, card_id, at, created_ms, score, decision in zip(
            records, *columns_in, strict=True
        ):
            prediction = BarePrediction(
                event_id, card_id, at, created_ms, score, decision, model.version, now
            )
            self.producer.produce(self.output_topic, encode(prediction), record.key())
        if self.producer.flush(30):
            raise BenchError("bare loop: predictions not acknowledged")
        columns: dict[str, list[Any]] = {
            "amount": batch.amount.tolist(),
            "event_time": event_time,
            "create_time": created,
            "input_create_time": created,
            "scored_time": [now] * n,
            "model_version": [model.version] * n,
            "score": scores,
            "decision": decisions,
            "worker_id": ["bare"] * n,
            "source_partition": [r.partition() for r in records],
            "source_offset": [r.offset() for r in records],
            "ingested_time": [now] * n,
        }
        for table in (EVENTS, PREDICTIONS):  # the columns the sink fills; the rest get defaults
            names = [c for c in table.column_names if c in columns or hasattr(batch, c)]
            data = [columns[c] if c in columns else getattr(batch, c) for c in names]
            self.client.insert(
                table.raw, data, column_names=names, database=self.database, column_oriented=True
            )


def measure_bare(stack: BenchStack, events: int, seed: int, warehouse_dsn: str) -> float:
    """events/s of :class:`BareLoop` on a fresh copy of the JSON backlog, same broker and model.

    ``warehouse_dsn`` is opened by this process: with chDB, a directory no child process uses.
    """
    settings = stack.phase_settings("bare")
    stack.say(f"[bare] producing the same {events:,} JSON events to a fresh topic")
    produce(settings, ProduceOptions(events=events, seed=seed))
    settings = settings.model_copy(update={"warehouse_dsn": warehouse_dsn})
    client = connect(settings)
    consumer = Consumer(consumer_config(settings, settings.worker_group))
    try:
        for statement in create_statements(settings.warehouse_database):
            client.command(statement)
        consumer.subscribe([settings.topics.transactions])
        loop = BareLoop(
            consumer,
            Producer(producer_config(settings)),
            settings.topics.predictions,
            load_model(FileModelStore(settings.model_dir)),
            client,
            settings.warehouse_database,
        )
        stack.say("[bare] one thread: consume → decode → features → predict → produce → insert")
        seconds = loop.run(events)
    finally:
        consumer.close()
        client.close()
    stack.say(f"[bare] {events:,} events in {seconds:.2f}s: {events / seconds:,.0f} events/s")
    return events / seconds
