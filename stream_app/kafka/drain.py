"""Read a partition up to the end it had when asked: its high watermark.

The end is the broker's high watermark, as on any Kafka cluster. The loop stops on the consumer's
fetch position, not on the offset of the last record yielded: the last offset of a log can be a
transaction marker, which a consumer never sees as a record but steps over.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from stream_app.errors import BrokerError


def read_to_end(
    consumer: Consumer,
    partition: TopicPartition,
    batch: int = 1000,
    poll_s: float = 0.5,
    timeout_s: float = 60.0,
) -> Iterator[Message]:
    """Assign ``partition`` (at its offset) and yield what it held when called, to its end.

    Each ``consume`` asks for at most the records left before the end, so that it returns as soon
    as they are there instead of waiting ``poll_s`` for more; it waits ``poll_s`` only where
    offsets hold no record (compacted away, or a transaction marker).
    """
    consumer.assign([partition])
    deadline = time.monotonic() + timeout_s
    low, high = watermarks(consumer, partition, deadline)
    position = max(low, partition.offset)
    while position < high and time.monotonic() < deadline:
        for record in consumer.consume(min(batch, high - position), poll_s):
            if record.error() is None and (record.offset() or 0) < high:
                yield record
        (fetched,) = consumer.position([partition])
        position = max(position, fetched.offset)
    if position < high:
        raise BrokerError(
            f"{partition.topic}[{partition.partition}] not read to its end in {timeout_s}s"
        )


def read_all_to_end(
    consumer: Consumer,
    partitions: list[TopicPartition],
    batch: int = 1000,
    poll_s: float = 0.5,
    timeout_s: float = 60.0,
) -> Iterator[Message]:
    """:func:`read_to_end` over several partitions, one after the other."""
    for partition in partitions:
        yield from read_to_end(consumer, partition, batch, poll_s, timeout_s)


def watermarks(consumer: Consumer, partition: TopicPartition, deadline: float) -> tuple[int, int]:
    """The partition's (low, high) watermarks, asked again while its leader is not yet serving.

    Right after a topic is created, or a broker restarted, the broker can answer "not leader for
    partition" for a moment although its metadata already names itself as leader.
    """
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=10)
            return low, high
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"no watermarks for {partition.topic}[{partition.partition}]: {exc}"
                ) from exc
        time.sleep(0.1)
