"""A producer thread that offers JSON events at a fixed rate.

It uses the project's default producer settings (``linger.ms`` 5, librdkafka's default) rather
than ``stream-app produce``'s 20 ms, so the latency measured is the pipeline's, not mostly the
client's batching.
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, Message, Producer

from stream_app.codecs.json import JsonCodec
from stream_app.devtools.bench.threads import PhaseThread
from stream_app.devtools.produce import ProduceOptions, synthetic_records
from stream_app.kafka.config import producer_config
from stream_app.settings import Settings


class PacedProducer(PhaseThread):
    """Sends ``events`` records at ``rate`` per second; ``failure`` holds what stopped it."""

    def __init__(self, settings: Settings, rate: float, events: int, seed: int) -> None:
        super().__init__("bench-paced-producer")
        self._settings = settings
        self._options = ProduceOptions(events=events, rate=rate, seed=seed)
        self.sent = 0
        self.seconds = 0.0

    def work(self) -> None:
        producer = Producer(producer_config(self._settings))
        errors: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                errors.append(error)

        encode, topic, rate = (
            JsonCodec().encode,
            self._settings.topics.transactions,
            self._options.rate,
        )
        started = time.monotonic()
        for index, (item, _) in enumerate(synthetic_records(self._options)):
            if self._stopping.is_set():
                break
            event = item.event
            while True:
                try:
                    producer.produce(
                        topic, encode(event), event.card_id.encode(), on_delivery=on_delivery
                    )
                    break
                except BufferError:
                    producer.poll(0.01)
            self.sent = index + 1
            ahead = self.sent / rate - (time.monotonic() - started)
            if ahead > 0.001:
                time.sleep(ahead)
            if index % 100 == 0:
                producer.poll(0)
        self.seconds = time.monotonic() - started
        remaining = producer.flush(30)
        if remaining or errors:
            raise RuntimeError(f"{remaining} records undelivered, errors: {errors[:3]}")
