"""Follow the alerts topic and describe each alert in one line (the demo prints a few live)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.errors import CodecError
from stream_app.kafka.config import consumer_config
from stream_app.settings import Settings


def describe(alert: dict[str, Any]) -> str:
    """One line: card, score, rules, top reasons.

    >>> describe({"card_id": "card-7", "score": 0.97, "rules": ["high_score"], "severity": "high",
    ...           "amount": 1.0, "merchant_category": "gaming", "top_features": ["count_1m"],
    ...           "top_contributions": [2.5]})
    'ALERT card-7 score 0.970 high [high_score] 1.00 gaming | count_1m +2.50'
    """
    reasons = ", ".join(
        f"{name} {value:+.2f}"
        for name, value in zip(alert["top_features"], alert["top_contributions"], strict=True)
    )
    return (
        f"ALERT {alert['card_id']} score {alert['score']:.3f} {alert['severity']} "
        f"[{', '.join(alert['rules'])}] {alert['amount']:.2f} {alert['merchant_category']} "
        f"| {reasons}"
    )


class AlertTicker:
    """A background reader of the alerts topic calling ``show`` for the first ``limit`` alerts."""

    def __init__(self, settings: Settings, show: Callable[[str], None], limit: int) -> None:
        self._codec = topic_codec(settings, schema_registry(settings), "alerts")
        self._consumer = Consumer(consumer_config(settings, f"ticker-{uuid.uuid4().hex}"))
        self._consumer.assign(
            [
                TopicPartition(settings.topics.alerts, p, OFFSET_BEGINNING)
                for p in range(settings.topics.partitions)
            ]
        )
        self._show = show
        self._limit = limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-ticker", daemon=True)
        self.seen = 0

    def start(self) -> AlertTicker:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set() and self.seen < self._limit:
            for message in self._consumer.consume(100, 0.2):
                if message.error() is None and self.seen < self._limit:
                    try:
                        alert = self._codec.decode(message.value() or b"")
                    except CodecError:  # not an alert of ours: not shown, the ticker goes on
                        continue
                    self.seen += 1
                    self._show(describe(alert))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
