"""The checking consumers of the latency phase: when did each prediction (or alert) arrive?

Each reads its topic from its partitions' ends as they are when it starts (what a paced run
sends comes after: an earlier run on the same deployment is not read again), with ``assign()``
(no group), and stamps each record with the wall clock as
``poll`` hands it over, beside the record's own CreateTime (when the worker produced it); records
are decoded after the run, except (for predictions) the one in every ``sample_every`` handed to
the visibility poller, so decoding never delays the next arrival.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from stream_app.codecs.avro import AvroRecordCodec
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.devtools.bench.threads import PhaseThread
from stream_app.kafka.config import consumer_config
from stream_app.settings import Settings


class ArrivalChecker(PhaseThread):
    """Collects (arrival ms, CreateTime ms, raw record) of every record of a topic written after
    it started (:attr:`assigned` is set then).

    ``topic_field`` names the topic in ``Settings.topics``; its records carry
    ``input_create_time``. With ``sample_every``, one record in that many is decoded at once and
    its (event id, input CreateTime) queued in ``samples`` for the visibility poller.
    """

    def __init__(self, settings: Settings, topic_field: str, sample_every: int | None) -> None:
        super().__init__(f"bench-checker-{topic_field}")
        self._settings = settings
        self._topic = getattr(settings.topics, topic_field)
        self._sample_every = sample_every
        self.codec: AvroRecordCodec = topic_codec(settings, schema_registry(settings), topic_field)
        self.arrivals: list[tuple[float, int, bytes]] = []
        self.samples: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        self.assigned = threading.Event()

    def work(self) -> None:
        settings = self._settings
        consumer = Consumer(consumer_config(settings, f"bench-checker-{uuid.uuid4().hex[:8]}"))
        topic = self._topic
        ends = []
        for p in range(settings.topics.partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            ends.append(TopicPartition(topic, p, high))
        consumer.assign(ends)
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
                self.arrivals.append((arrived_ms, record.timestamp()[1], value))
                if self._sample_every and len(self.arrivals) % self._sample_every == 0:
                    prediction = self.codec.decode(value)
                    self.samples.put((prediction["event_id"], prediction["input_create_time"]))
        finally:
            consumer.close()

    def latencies(self, since_ms: float) -> list[tuple[float, float, float]]:
        """(input CreateTime, arrival minus CreateTime, output's CreateTime minus CreateTime) in ms
        of inputs created since ``since_ms``: the whole latency and its part until the worker
        produced the output. Call once the thread has stopped.
        """
        decode = self.codec.decode
        latencies = []
        for arrived_ms, produced_ms, value in self.arrivals:
            created_ms = decode(value)["input_create_time"]
            if created_ms >= since_ms:
                latencies.append((created_ms, arrived_ms - created_ms, produced_ms - created_ms))
        return latencies
