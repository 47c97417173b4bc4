"""The worker's one producer: outputs sent in the background, the first failed delivery kept.

Deliveries report errors only (no callback per message); a checkpoint asks whether everything
sent so far was acknowledged before it commits input offsets.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from stream_app.errors import BrokerError
from stream_app.scoring.pipeline import OutputRecord


class Outputs:
    """Sends :class:`OutputRecord` s; ``producer`` is there for those that produce on their own
    (the model switch's acknowledgements)."""

    def __init__(self, producer_config: dict[str, Any]) -> None:
        self.producer = Producer(
            {**producer_config, "on_delivery": self.on_delivery, "delivery.report.only.error": True}
        )
        self.delivery_error: KafkaError | None = None

    def send(self, outputs: list[OutputRecord]) -> None:
        produce = self.producer.produce
        for out in outputs:
            while True:
                try:
                    if out.partition is None:
                        produce(out.topic, out.value, out.key, headers=out.headers)
                    else:
                        produce(out.topic, out.value, out.key, partition=out.partition)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    self.producer.poll(0.05)

    def outstanding(self) -> int:
        """Records sent and not acknowledged yet (delivery errors served first)."""
        self.producer.poll(0)
        return len(self.producer)

    def flush(self) -> None:
        self.producer.flush(60)

    def check_acknowledged(self) -> None:
        """Raise unless every record sent was acknowledged: before input offsets may move."""
        remaining = len(self.producer)
        if remaining or self.delivery_error is not None:
            raise BrokerError(
                f"outputs not acknowledged ({remaining} pending, error {self.delivery_error}); "
                "input offsets were not committed"
            )

    def on_delivery(self, error: KafkaError | None, _message: Message | None) -> None:
        if error is not None and self.delivery_error is None:
            self.delivery_error = error
