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
    yield from read_all_to_end(consumer, [partition], batch, poll_s, timeout_s)


def read_all_to_end(
    consumer: Consumer,
    partitions: list[TopicPartition],
    batch: int = 1000,
    poll_s: float = 0.5,
    timeout_s: float = 60.0,
) -> Iterator[Message]:
    """:func:`read_to_end` over several partitions at once, interleaved as fetches return them.

    Done once every partition is read to its reported end and a fetch comes back empty, or
    once, past every reported end, a record newer than the call arrived.
    """
    started_ms = time.time() * 1000
    consumer.assign(partitions)
    ends: dict[tuple[str, int], int] = {}
    reached: set[tuple[str, int]] = set()
    for partition in partitions:
        key = (partition.topic, partition.partition)
        low, ends[key] = consumer.get_watermark_offsets(partition, timeout=10)
        if low >= ends[key]:
            reached.add(key)
    fresh = False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = [r for r in consumer.consume(batch, poll_s) if r.error() is None]
        if not records and len(reached) == len(ends):
            return
        for record in records:
            key = (record.topic() or "", record.partition() or 0)
            yield record
            if (record.offset() or 0) + 1 >= ends[key]:
                reached.add(key)
                fresh = fresh or record.timestamp()[1] > started_ms
        if fresh and len(reached) == len(ends):
            return
    names = ", ".join(f"{p.topic}[{p.partition}]" for p in partitions)
    raise BrokerError(f"{names} not read to the end in {timeout_s}s")
