"""A producer thread that offers JSON events at a fixed rate.

Its events are generated and encoded when it is made, before the clock starts: generating an event
costs more than scoring it, and the generator first runs through the whole history to place it
(:meth:`TransactionGenerator.ending_at`). Made on the fly, the first record left only after that
run-through, and the records due meanwhile went out in a burst as fast as the generator made them:
a backlog of several seconds the worker took the first half of the phase to drain, with the
generator taking CPU from it all along.

It uses the project's default producer settings (``linger.ms`` 5, librdkafka's default) rather
than ``stream-app produce``'s 20 ms, so the latency measured is the pipeline's, not mostly the
client's batching.
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, Message, Producer

from stream_app.devtools.bench.threads import PhaseThread
from stream_app.devtools.produce import ProduceOptions, ProduceReport, encoded_records
from stream_app.kafka.config import producer_config
from stream_app.settings import Settings


class PacedProducer(PhaseThread):
    """Sends ``events`` records at ``rate`` per second from its first one; ``failure`` holds what
    stopped it. The records are made here, in the constructor."""

    def __init__(self, settings: Settings, rate: float, events: int, seed: int) -> None:
        super().__init__("bench-paced-producer")
        self._settings = settings
        self._rate = rate
        options = ProduceOptions(events=events, rate=rate, seed=seed)
        self._records = list(encoded_records(settings, options, ProduceReport()))
        self.sent = 0
        self.seconds = 0.0

    def work(self) -> None:
        producer = Producer(producer_config(self._settings))
        errors: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                errors.append(error)

        rate = self._rate
        started = time.monotonic()
        for index, (topic, key, value) in enumerate(self._records):
            if self._stopping.is_set():
                break
            while True:
                try:
                    producer.produce(topic, value, key, on_delivery=on_delivery)
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
