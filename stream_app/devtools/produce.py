"""``stream-app produce``: synthetic transactions (and a share of malformed ones) to Kafka."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from confluent_kafka import KafkaError, Message, Producer

from stream_app.codecs.base import TransactionCodec
from stream_app.codecs.factory import avro_transactions, schema_registry
from stream_app.codecs.json import JsonCodec
from stream_app.devtools.bad_events import make_bad
from stream_app.devtools.generator import (
    AppliedDrift,
    LabelledTransaction,
    TransactionGenerator,
    drift_schedule,
)
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
    drift: str = "none"  # a scenario of stream_app.devtools.generator.drift, or a TOML file


@dataclass
class ProduceReport:
    valid: int = 0
    malformed: int = 0
    fraud: int = 0
    malformed_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    drift: tuple[AppliedDrift, ...] = ()


def codec_for(settings: Settings, event_format: EventFormat) -> TransactionCodec:
    if event_format == "avro":
        return avro_transactions(settings, schema_registry(settings))
    return JsonCodec()


def synthetic_generator(options: ProduceOptions) -> TransactionGenerator:
    """The seeded generator of a run, its history ending at the wall clock when production
    starts, with the run's drift schedule."""
    return TransactionGenerator.ending_at(
        options.events,
        seed=options.seed,
        fraud_rate=options.fraud_rate,
        nominal_rate=options.rate or UNPACED_NOMINAL_RATE,
        time_scale=options.time_scale,
        drift=drift_schedule(options.drift, options.events),
    )


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
    codec = codec_for(settings, options.event_format)
    producer = Producer(producer_config(settings, **{"linger.ms": 20}))
    report = ProduceReport()
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    topic = settings.topics.transactions
    started = last_progress = time.monotonic()
    generator = synthetic_generator(options)
    for index, (item, corrupt) in enumerate(synthetic_records(options, generator)):
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
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
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
    remaining = producer.flush(60)
    report.seconds = time.monotonic() - started
    report.drift = generator.drift_points()
    if remaining or failures:
        raise BrokerError(
            f"{remaining} records undelivered, {len(failures)} failed: {failures[:3]}"
        )
    progress(report)
    return report
