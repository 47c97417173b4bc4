"""Read a partition to its real end, which the local broker misreports.

Tansu 0.6 reports as high watermark the base offset of the last record batch + 1, which can be
lower than the real end but never higher. So: read at least up to the reported end (this also
proves the consumer is really fetching), then until a fetch comes back empty or a record is newer
than the moment we started (a live topic, such as heartbeats, never goes quiet). On real Kafka the
reported end is exact and the extra check costs at most one ``poll_s``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import Consumer, Message, TopicPartition

from stream_app.errors import BrokerError


def read_to_end(
    consumer: Consumer,
    partition: TopicPartition,
    batch: int = 1000,
    poll_s: float = 0.5,
    timeout_s: float = 60.0,
) -> Iterator[Message]:
    """Assign ``partition`` (at its offset) and yield what it held when called, to the real end."""
    started_ms = time.time() * 1000
    consumer.assign([partition])
    low, high = consumer.get_watermark_offsets(partition, timeout=10)
    position = -1
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = [r for r in consumer.consume(batch, poll_s) if r.error() is None]
        if not records and (position >= high or low >= high):
            return
        for record in records:
            position = (record.offset() or 0) + 1
            yield record
            if position >= high and record.timestamp()[1] > started_ms:
                return
    raise BrokerError(
        f"{partition.topic}[{partition.partition}] not read to its end in {timeout_s}s"
    )
