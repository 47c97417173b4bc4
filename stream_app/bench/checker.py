"""The checking consumer of the latency phase: when did each prediction arrive?

It reads the predictions topic with ``assign()`` (no group) and stamps each record with the wall
clock as ``poll`` hands it over; records are decoded after the run, except the one in every
``sample_every`` handed to the visibility poller, so decoding never delays the next arrival.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from stream_app.codecs.avro import AvroRecordCodec
from stream_app.codecs.factory import prediction_codec, schema_registry
from stream_app.kafka.config import consumer_config
from stream_app.settings import Settings


class PredictionChecker(threading.Thread):
    """Collects (arrival ms, raw prediction) of every prediction since the topic's beginning."""

    def __init__(self, settings: Settings, sample_every: int) -> None:
        super().__init__(name="bench-checker", daemon=True)
        self._settings = settings
        self._sample_every = sample_every
        self._stopping = threading.Event()
        self.codec: AvroRecordCodec = prediction_codec(settings, schema_registry(settings))
        self.arrivals: list[tuple[float, bytes]] = []
        self.samples: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        self.failure: BaseException | None = None
        self.assigned = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        try:
            self._consume()
        except BaseException as exc:
            self.failure = exc

    def _consume(self) -> None:
        settings = self._settings
        consumer = Consumer(consumer_config(settings, f"bench-checker-{uuid.uuid4().hex[:8]}"))
        topic = settings.topics.predictions
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.topics.partitions)]
        )
        self.assigned.set()
        try:
            while not self._stopping.is_set():
                record = consumer.poll(0.1)
                if record is None:
                    continue
                arrived_ms = time.time() * 1000
                value = record.value()
                if record.error() is not None or value is None:
                    continue
                self.arrivals.append((arrived_ms, value))
                if len(self.arrivals) % self._sample_every == 0:
                    prediction = self.codec.decode(value)
                    self.samples.put((prediction["event_id"], prediction["input_create_time"]))
        finally:
            consumer.close()

    def latencies(self, since_ms: float) -> list[tuple[float, float]]:
        """(input CreateTime, arrival minus CreateTime) in ms of inputs created since ``since_ms``.

        Call once the thread has stopped.
        """
        decode = self.codec.decode
        latencies = []
        for arrived_ms, value in self.arrivals:
            created_ms = decode(value)["input_create_time"]
            if created_ms >= since_ms:
                latencies.append((created_ms, arrived_ms - created_ms))
        return latencies
