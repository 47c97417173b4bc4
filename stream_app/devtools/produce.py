"""``stream-app produce``: synthetic transactions (and a share of malformed ones) to Kafka."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from confluent_kafka import KafkaError, Message, Producer

from stream_app.codecs.avro import AvroRecordCodec
from stream_app.codecs.base import TransactionCodec
from stream_app.codecs.factory import avro_transactions, schema_registry, topic_codec
from stream_app.codecs.json import JsonCodec
from stream_app.devtools.bad_events import make_bad
from stream_app.devtools.generator import LabelledTransaction, TransactionGenerator
from stream_app.devtools.labels import ChargebackDelays, ChargebackLabeller, Label
from stream_app.errors import BrokerError
from stream_app.kafka.config import producer_config
from stream_app.settings import Settings

EventFormat = Literal["json", "avro"]
#: events per second of event time (before ``time_scale``) when the producer is not paced
UNPACED_NOMINAL_RATE = 1000.0


@dataclass(frozen=True)
class ProduceOptions:
    events: int = 100_000
    rate: float = 0.0  # events per wall second; 0 = as fast as possible
    fraud_rate: float = 0.01
    seed: int = 42
    bad_fraction: float = 0.0
    time_scale: float = 60.0
    event_format: EventFormat = "json"
    labels: bool = False  # chargeback labels of the valid events to the labels topic
    chargebacks: ChargebackDelays = field(default_factory=ChargebackDelays)
    truth_file: Path | None = None  # the fraud event ids, one a line (stream-app label-feedback)


@dataclass
class ProduceReport:
    valid: int = 0
    malformed: int = 0
    fraud: int = 0
    malformed_by_reason: dict[str, int] = field(default_factory=dict)
    labels: int = 0
    seconds: float = 0.0


def codec_for(settings: Settings, event_format: EventFormat) -> TransactionCodec:
    if event_format == "avro":
        return avro_transactions(settings, schema_registry(settings))
    return JsonCodec()


def synthetic_records(options: ProduceOptions) -> Iterator[tuple[LabelledTransaction, bool]]:
    """Generated events, each flagged as to be corrupted or not (seeded, reproducible); their
    history ends at the wall clock when production starts."""
    generator = TransactionGenerator.ending_at(
        options.events,
        seed=options.seed,
        fraud_rate=options.fraud_rate,
        nominal_rate=options.rate or UNPACED_NOMINAL_RATE,
        time_scale=options.time_scale,
    )
    corrupt = random.Random(options.seed + 1)  # noqa: S311  # synthetic data
    for _, item in zip(range(options.events), generator, strict=False):
        yield item, corrupt.random() < options.bad_fraction


def produce(
    settings: Settings,
    options: ProduceOptions,
    progress: Callable[[ProduceReport], None] = lambda _: None,
) -> ProduceReport:
    """Produce ``options.events`` records keyed by card id; returns what was sent, by kind."""
    codec = codec_for(settings, options.event_format)
    producer = Producer(producer_config(settings, **{"linger.ms": 20}))
    report = ProduceReport()
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    def send(topic: str, value: bytes, key: bytes) -> None:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
                return
            except BufferError:
                producer.poll(0.05)

    labeller = ChargebackLabeller(options.chargebacks, options.seed + 2)
    labels = topic_codec(settings, schema_registry(settings), "labels") if options.labels else None

    def send_labels(codec: AvroRecordCodec, due: Iterator[Label]) -> None:
        for label in due:
            send(settings.topics.labels, codec.encode(label.record()), label.card_id.encode())
            report.labels += 1

    frauds: list[str] = []
    topic = settings.topics.transactions
    started = last_progress = time.monotonic()
    for index, (item, corrupt) in enumerate(synthetic_records(options)):
        key = item.event.card_id.encode()
        if corrupt:
            case, value = make_bad(item.event, report.malformed)
            key = case.key(item.event)
            report.malformed += 1
            report.malformed_by_reason[case.reason] = (
                report.malformed_by_reason.get(case.reason, 0) + 1
            )
        else:
            value = codec.encode(item.event)
            report.valid += 1
            report.fraud += item.is_fraud
        send(topic, value, key)
        if labels and not corrupt:
            send_labels(labels, labeller.observe(item))
        if options.truth_file and item.is_fraud and not corrupt:
            frauds.append(item.event.event_id)
        if options.rate > 0:
            ahead = (index + 1) / options.rate - (time.monotonic() - started)
            if ahead > 0.001:
                time.sleep(ahead)
        if index % 1000 == 0:
            producer.poll(0)
            now = time.monotonic()
            if now - last_progress >= 0.5:
                report.seconds = now - started
                progress(report)
                last_progress = now
    if labels:
        send_labels(labels, labeller.tail())  # due after the last event: see docs/labels.md
    if options.truth_file:
        options.truth_file.write_text("".join(f"{event_id}\n" for event_id in frauds))
    remaining = producer.flush(60)
    report.seconds = time.monotonic() - started
    if remaining or failures:
        raise BrokerError(
            f"{remaining} records undelivered, {len(failures)} failed: {failures[:3]}"
        )
    progress(report)
    return report
