"""A consumer's lag per assigned partition, from the watermarks the client cached from its last
fetches (no request to the broker: cheap enough to read once per loop turn)."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition


def consumer_lag(consumer: Consumer) -> dict[tuple[str, int], int]:
    """``(topic, partition) → high watermark - position`` for each assigned partition whose
    position and watermark are known (nothing consumed or fetched yet: left out)."""
    lag = {}
    for tp in consumer.position(consumer.assignment()):
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        if tp.offset >= 0 and high >= 0:
            lag[(tp.topic, tp.partition)] = max(high - tp.offset, 0)
    return lag


class PartitionLag:
    """The last lag reading of a loop's consumer, for ``/metrics`` and health (read from other
    threads: :attr:`by_partition` is replaced whole, never changed in place)."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self.by_partition: dict[tuple[str, int], int] = {}
        self._at = -every_s

    def update(self, consumer: Consumer, force: bool = False) -> dict[tuple[str, int], int]:
        """Read the lag again if ``force`` or if the last reading is ``every_s`` old."""
        now = time.monotonic()
        if force or now - self._at >= self.every_s:
            self.by_partition, self._at = consumer_lag(consumer), now
        return self.by_partition

    def labelled(self) -> dict[tuple[str, str], int]:
        """The lag by ``(topic, partition)`` as label values."""
        return {(topic, str(p)): lag for (topic, p), lag in self.by_partition.items()}


def group_lag(
    consumer: Consumer, topics: tuple[str, ...], timeout_s: float = 10.0
) -> dict[str, dict[int, int]]:
    """``topic → partition → high watermark - committed offset`` of the group ``consumer`` was
    made with (asked of the broker; the consumer does not join the group). A partition the group
    never committed counts from its low watermark: all of it is lag."""
    metadata = consumer.list_topics(timeout=timeout_s).topics
    wanted = [
        TopicPartition(topic, partition)
        for topic in topics
        if topic in metadata
        for partition in sorted(metadata[topic].partitions)
    ]
    lag: dict[str, dict[int, int]] = {topic: {} for topic in topics if topic in metadata}
    for tp in consumer.committed(wanted, timeout=timeout_s):
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
        lag[tp.topic][tp.partition] = high - (tp.offset if tp.offset >= 0 else low)
    return lag
