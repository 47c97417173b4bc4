"""Per-card state follows the partition assignment: restored from its changelog on assign.

Partition p of the compacted changelog topic holds the state of input partition p (the worker
writes it there explicitly at each checkpoint, before committing the checkpoint's input offsets).
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from stream_app.kafka.drain import read_to_end
from stream_app.state import CardStore

log = logging.getLogger(__name__)


class ChangelogRestorer:
    """Reads changelog partitions to their real end into a :class:`CardStore`."""

    def __init__(self, consumer: Consumer, topic: str) -> None:
        self._consumer = consumer
        self._topic = topic

    def restore(self, store: CardStore, partition: int) -> int:
        """Replace the state of ``partition`` with its changelog; returns the records read."""
        started = time.perf_counter()
        start = TopicPartition(self._topic, partition, OFFSET_BEGINNING)
        records = [(r.key() or b"", r.value()) for r in read_to_end(self._consumer, start, 10_000)]
        self._consumer.unassign()  # an idle assignment would keep fetching the changelog
        store.drop(partition)
        unreadable = store.restore(partition, records)
        if unreadable:
            log.warning(
                "partition %d: %d changelog records unreadable, passed over (their cards start "
                "afresh); the first: %s",
                partition,
                len(unreadable),
                unreadable[0],
            )
        log.info(
            "partition %d: %d state records restored in %.2fs (%d cards)",
            partition,
            len(records),
            time.perf_counter() - started,
            len(store.partition(partition)),
        )
        return len(records)

    def close(self) -> None:
        self._consumer.close()
