"""The yardstick: the same job as worker + sink in one thread, with no framework.

consume(5000) → msgspec JSON decode → features (per-card state included) →
``predict(num_threads=1)`` → alert rules, cool-down and ``pred_contrib`` of the rows that alert →
one JSON prediction per event and one per alert → flush → insert the events, predictions and
alerts rows (the sink's tables) → commit. The same work as worker and sink, minimal on purpose and
no strawman: batched wherever batching is the obvious thing, the project's feature, rule and
cool-down functions called directly. What it leaves out is the framework's own work: no
card-state changelog, no dead-letter path, no model registry or control topic, no threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from models.loader import load_model
from models.registry import FileModelStore
from models.runtime import LightGBMRuntime
from stream_app.alerts import RuleSet, apply_cooldown
from stream_app.devtools.bench.errors import BenchError
from stream_app.devtools.bench.stack import BenchStack
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.events import FloatArray, Transaction, TransactionBatch
from stream_app.features import compute_features
from stream_app.kafka.config import consumer_config, producer_config
from stream_app.scoring.alerting import rule_columns, top_contributions
from stream_app.state import CardStore, batch_velocity_features
from stream_app.warehouse.client import connect
from stream_app.warehouse.schema import ALERTS, EVENTS, PREDICTIONS, Table, create_statements


class BarePrediction(msgspec.Struct):
    event_id: str
    card_id: str
    event_time: int
    input_create_time: int
    score: float
    decision: str
    model_version: str
    scored_time: int


class BareAlert(msgspec.Struct):
    event_id: str
    card_id: str
    event_time: int
    input_create_time: int
    alerted_time: int
    score: float
    model_version: str
    rules: list[str]
    severity: str
    amount: float
    merchant_category: str
    top_features: list[str]
    top_contributions: list[float]
    worker_id: str


@dataclass(frozen=True)
class BareResult:
    events_per_s: float
    alerts: int  # published: the worker's count on the same backlog must be the same
    alert_ids: frozenset[str]  # their event ids


@dataclass
class BareLoop:
    consumer: Consumer
    producer: Producer
    output_topic: str
    alerts_topic: str
    model: LightGBMRuntime
    rules: RuleSet
    cooldown_ms: int
    client: Client
    database: str
    store: CardStore = field(default_factory=CardStore)
    alert_ids: list[str] = field(default_factory=list)

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
            partitions = [r.partition() or 0 for r in records]
            velocity = batch_velocity_features(
                self.store,
                partitions,
                batch.card_id,
                batch.merchant_id,
                batch.amount,
                batch.event_time,
            )
            features = compute_features(batch, velocity)
            scores = self.model.predict(features)
            created = [r.timestamp()[1] for r in records]
            alerts = self._alerts(batch, partitions, features, scores, created)
            self._publish_and_store(records, batch, scores.tolist(), created, alerts)
            last = {(r.topic() or "", r.partition() or 0): r.offset() or 0 for r in records}
            offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
            self.consumer.commit(offsets=offsets, asynchronous=False)
            done += len(records)
        return time.perf_counter() - first

    def _alerts(
        self,
        batch: TransactionBatch,
        partitions: list[int],
        features: FloatArray,
        scores: FloatArray,
        created: list[int],
    ) -> list[BareAlert]:
        """Rules, cool-down, then the top three contributions of each row that still alerts."""
        fired = self.rules.evaluate(rule_columns(batch, features, scores), batch.merchant_category)
        card_partition = dict(zip(batch.card_id, partitions, strict=True))
        kept, _ = apply_cooldown(
            fired,
            batch.card_id,
            batch.event_time,
            lambda card: self.store.card(card_partition[card], card),
            self.cooldown_ms,
        )
        if not kept:
            return []
        rows = [row for row, _ in kept]
        contributions = self.model.contributions(features[rows])
        now, alerts = int(time.time() * 1000), []
        for (row, names), contribution in zip(kept, contributions, strict=True):
            top_features, top_values = top_contributions(contribution, 3)
            alerts.append(
                BareAlert(
                    batch.event_id[row],
                    batch.card_id[row],
                    int(batch.event_time[row]),
                    created[row],
                    now,
                    float(scores[row]),
                    self.model.version,
                    names,
                    self.rules.severity(names),
                    float(batch.amount[row]),
                    batch.merchant_category[row],
                    top_features,
                    top_values,
                    "bare",
                )
            )
        return alerts

    def _publish_and_store(
        self,
        records: list[Message],
        batch: TransactionBatch,
        scores: list[float],
        created: list[int],
        alerts: list[BareAlert],
    ) -> None:
        model, encode, now, n = self.model, msgspec.json.encode, int(time.time() * 1000), len(batch)
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
        for alert in alerts:
            self.producer.produce(self.alerts_topic, encode(alert), alert.card_id.encode())
        if self.producer.flush(30):
            raise BenchError("bare loop: predictions or alerts not acknowledged")
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
            self._insert(
                table, names, [columns[c] if c in columns else getattr(batch, c) for c in names]
            )
        if alerts:
            names = [c for c in ALERTS.column_names if c in BareAlert.__struct_fields__]
            data = [[getattr(alert, c) for alert in alerts] for c in names]
            self._insert(ALERTS, [*names, "ingested_time"], [*data, [now] * len(alerts)])
        self.alert_ids.extend(alert.event_id for alert in alerts)

    def _insert(self, table: Table, names: list[str], columns: list[Any]) -> None:
        self.client.insert(
            table.raw, columns, column_names=names, database=self.database, column_oriented=True
        )


def measure_bare(stack: BenchStack, events: int, seed: int, warehouse_dsn: str) -> BareResult:
    """:class:`BareLoop` on a fresh copy of the JSON backlog, same broker and model.

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
            settings.topics.alerts,
            load_model(FileModelStore(settings.model_dir)),
            RuleSet.load(settings.alert_rules) if settings.alert_rules else RuleSet.default(),
            int(settings.alert_cooldown_s * 1000),
            client,
            settings.warehouse_database,
        )
        stack.say(
            "[bare] one thread: consume → decode → features → predict → alerts → produce → insert"
        )
        seconds = loop.run(events)
    finally:
        consumer.close()
        client.close()
    stack.say(
        f"[bare] {events:,} events in {seconds:.2f}s: {events / seconds:,.0f} events/s, "
        f"{len(loop.alert_ids):,} alerts"
    )
    return BareResult(events / seconds, len(loop.alert_ids), frozenset(loop.alert_ids))
