"""``stream-app label-feedback``: investigators' verdicts on alerts, as ``alert_feedback`` labels.

A fraud team checks a capped number of alerts a day, within hours. This process consumes the
``alerts`` topic and, for the first ``per_day`` alerted events of each day of event time (in the
order the alerts arrive), sends a label due a few hours after the event. An alert does not carry
the truth, so the verdict comes from a truth file the producer wrote (``stream-app produce
--truth FILE``: the generator's fraud event ids, one a line): the investigators of this
simulation are always right. Offsets are committed once the labels were acknowledged.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Message, Producer

from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.devtools.labels import DAY_MS, Label
from stream_app.errors import BrokerError, CodecError
from stream_app.kafka.commit import commit_offsets
from stream_app.kafka.config import consumer_config, producer_config
from stream_app.settings import Settings

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class FeedbackOptions:
    per_day: int = 100
    """alerted events investigated per day of event time"""
    min_hours: float = 1.0
    max_hours: float = 24.0
    """a verdict comes uniformly between these many hours after the event"""
    seed: int = 42
    group: str = "label-feedback"


class Investigators:
    """Which alerts get a verdict, and the verdict.

    >>> team = Investigators(frozenset({"e2"}), FeedbackOptions(per_day=2))
    >>> alerts = [("e1", 0), ("e1", 0), ("e2", 10), ("e3", 20), ("e4", DAY_MS)]
    >>> [(x.event_id, x.is_fraud) for e, t in alerts if (x := team.verdict(e, "c", t))]
    [('e1', False), ('e2', True), ('e4', False)]
    """

    def __init__(self, frauds: frozenset[str], options: FeedbackOptions) -> None:
        self._frauds = frauds
        self._options = options
        self._rng = random.Random(options.seed)  # noqa: S311  # synthetic data
        self._checked: Counter[int] = Counter()  # verdicts per day of event time
        self._seen: set[str] = set()  # an event alerted twice is checked once

    def verdict(self, event_id: str, card_id: str, event_time: int) -> Label | None:
        day = event_time // DAY_MS
        if event_id in self._seen or self._checked[day] >= self._options.per_day:
            return None
        self._seen.add(event_id)
        self._checked[day] += 1
        hours = self._rng.uniform(self._options.min_hours, self._options.max_hours)
        due = event_time + round(hours * HOUR_MS)
        return Label(event_id, card_id, event_id in self._frauds, "alert_feedback", due, event_time)


def read_truth(path: Path) -> frozenset[str]:
    """The fraud event ids of a truth file (one a line)."""
    return frozenset(line for line in path.read_text().splitlines() if line)


def run_feedback(
    settings: Settings, truth: Path, options: FeedbackOptions, stop: Callable[[int], bool]
) -> int:
    """Label alerts until ``stop(labels sent so far)`` says so (checked after every poll)."""
    team = Investigators(read_truth(truth), options)
    registry = schema_registry(settings)
    alerts = topic_codec(settings, registry, "alerts")
    labels = topic_codec(settings, registry, "labels")
    consumer = Consumer(consumer_config(settings, options.group))
    producer = Producer(producer_config(settings))
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    consumer.subscribe([settings.topics.alerts])
    sent = 0
    try:
        while not stop(sent):
            offsets: dict[tuple[str, int], int] = {}
            for record in consumer.consume(1000, 0.5):
                if record.error() is not None:
                    continue
                offsets[(record.topic() or "", record.partition() or 0)] = (
                    record.offset() or 0
                ) + 1
                try:
                    alert = alerts.decode(record.value() or b"")
                except CodecError as exc:  # not an alert: passed over, its offset committed
                    log.warning("%s@%d is not an alert: %s", record.topic(), record.offset(), exc)
                    continue
                label = team.verdict(alert["event_id"], alert["card_id"], alert["event_time"])
                if label is not None:
                    value = labels.encode(label.record())
                    producer.produce(
                        settings.topics.labels,
                        value,
                        label.card_id.encode(),
                        on_delivery=on_delivery,
                    )
                    sent += 1
            if offsets:
                if producer.flush(30) or failures:  # offsets stay: the alerts are read again
                    raise BrokerError(f"labels not acknowledged: {failures[:3]}")
                commit_offsets(consumer, offsets)
    finally:
        consumer.close()
    return sent
