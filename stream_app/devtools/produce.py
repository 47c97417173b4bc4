"""``stream-app produce``: synthetic transactions (and a share of malformed ones) to Kafka."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from confluent_kafka import KafkaError, Message, Producer

from stream_app.codecs.base import TransactionCodec
from stream_app.codecs.factory import avro_transactions, schema_registry, topic_codec
from stream_app.codecs.json import JsonCodec
from stream_app.devtools.bad_events import make_bad
from stream_app.devtools.generator import (
    AppliedDrift,
    GeneratorOptions,
    LabelledTransaction,
    TransactionGenerator,
    drift_schedule,
)
from stream_app.devtools.labels import ChargebackDelays, ChargebackLabeller
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
    drift: str = "none"  # a scenario of stream_app.devtools.generator.drift, or a TOML file
    start_ms: int | None = None  # the first event's time; default: the history ends now
    #: the cards and terminals (default: ``seed``'s own); a champion's training population
    #: (``models.train.training_population``) streams the customers it was trained on
    population_seed: int | None = None


@dataclass
class ProduceReport:
    valid: int = 0
    malformed: int = 0
    fraud: int = 0
    malformed_by_reason: dict[str, int] = field(default_factory=dict)
    labels: int = 0
    seconds: float = 0.0
    drift: tuple[AppliedDrift, ...] = ()


def codec_for(settings: Settings, event_format: EventFormat) -> TransactionCodec:
    if event_format == "avro":
        return avro_transactions(settings, schema_registry(settings))
    return JsonCodec()


def synthetic_generator(options: ProduceOptions) -> TransactionGenerator:
    """The seeded generator of a run, from ``start_ms`` or with its history ending at the wall
    clock when production starts, with the run's drift schedule."""
    generator_options = GeneratorOptions(
        seed=options.seed,
        fraud_rate=options.fraud_rate,
        nominal_rate=options.rate or UNPACED_NOMINAL_RATE,
        time_scale=options.time_scale,
        drift=drift_schedule(options.drift, options.events),
        population_seed=options.population_seed,
    )
    if options.start_ms is not None:
        return TransactionGenerator(start_ms=options.start_ms, **generator_options)
    return TransactionGenerator.ending_at(options.events, **generator_options)


def synthetic_records(
    options: ProduceOptions, generator: TransactionGenerator | None = None
) -> Iterator[tuple[LabelledTransaction, bool]]:
    """Generated events, each flagged as to be corrupted or not (seeded, reproducible)."""
    events = generator or synthetic_generator(options)
    corrupt = random.Random(options.seed + 1)  # noqa: S311  # synthetic data
    for _, item in zip(range(options.events), events, strict=False):
        yield item, corrupt.random() < options.bad_fraction


def produce(
    settings: Settings,
    options: ProduceOptions,
    progress: Callable[[ProduceReport], None] = lambda _: None,
) -> ProduceReport:
    """Produce ``options.events`` records keyed by card id; returns what was sent, by kind."""
    report = ProduceReport()

    def sent_for(seconds: float) -> None:
        report.seconds = seconds
        progress(report)

    send(settings, encoded_records(settings, options, report), options.rate, sent_for)
    return report


#: one record to produce: (topic, key, value)
Record = tuple[str, bytes, bytes]


def encoded_records(
    settings: Settings, options: ProduceOptions, report: ProduceReport
) -> Iterator[Record]:
    """Each record to produce, counted into ``report`` by kind as it is made: the transactions,
    and with ``options.labels`` the chargeback labels as they fall due (the rest after the last
    event, see docs/labels.md); with ``options.truth_file``, that file written at the end."""
    codec = codec_for(settings, options.event_format)
    transactions, labels_topic = settings.topics.transactions, settings.topics.labels
    labeller = ChargebackLabeller(options.chargebacks, options.seed + 2)
    label_codec = (
        topic_codec(settings, schema_registry(settings), "labels") if options.labels else None
    )
    frauds: list[str] = []
    generator = synthetic_generator(options)
    for item, corrupt in synthetic_records(options, generator):
        key = item.event.card_id.encode()
        if corrupt:
            case, value = make_bad(item.event, report.malformed)
            key = case.key(item.event)
            report.malformed += 1
            report.malformed_by_reason[case.reason] = (
                report.malformed_by_reason.get(case.reason, 0) + 1
            )
            yield transactions, key, value
            continue
        report.valid += 1
        report.fraud += item.is_fraud
        yield transactions, key, codec.encode(item.event)
        if item.is_fraud:
            frauds.append(item.event.event_id)
        if label_codec:
            for label in labeller.observe(item):
                report.labels += 1
                yield labels_topic, label.card_id.encode(), label_codec.encode(label.record())
    if label_codec:
        for label in labeller.tail():
            report.labels += 1
            yield labels_topic, label.card_id.encode(), label_codec.encode(label.record())
    if options.truth_file:
        options.truth_file.write_text("".join(f"{event_id}\n" for event_id in frauds))
    report.drift = generator.drift_points()


def send(
    settings: Settings,
    records: Iterable[Record],
    rate: float = 0.0,
    progress: Callable[[float], None] = lambda _: None,
) -> None:
    """Produce the records, ``rate`` transactions per second (0: as fast as the client takes
    them), until all are acknowledged; ``progress`` gets the seconds so far."""
    producer = Producer(producer_config(settings, **{"linger.ms": 20}))
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    transactions = settings.topics.transactions
    index = 0
    started = last_progress = time.monotonic()
    for topic, key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if topic != transactions:
            continue
        index += 1
        if rate > 0:
            ahead = index / rate - (time.monotonic() - started)
            if ahead > 0.001:
                time.sleep(ahead)
        if index % 1000 == 0:
            producer.poll(0)
            now = time.monotonic()
            if now - last_progress >= 0.5:
                progress(now - started)
                last_progress = now
    remaining = producer.flush(60)
    if remaining or failures:
        raise BrokerError(
            f"{remaining} records undelivered, {len(failures)} failed: {failures[:3]}"
        )
    progress(time.monotonic() - started)
