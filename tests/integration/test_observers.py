"""The per-batch observer seam in a running worker: every scored event seen once, and the records
an observer adds acknowledged before the offsets of their batch are committed."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence

import pytest
from confluent_kafka import Consumer, TopicPartition

from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import consumer_config
from stream_app.kafka.topics import ensure_topics
from stream_app.scoring.build import build_loop
from stream_app.scoring.observers import ScoredEvents
from stream_app.scoring.records import OutputRecord
from tests.integration.conftest import in_thread, wait_for

pytestmark = pytest.mark.integration


class OffsetsObserver:
    """One record per batch: the next offset of each input partition the batch scored."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.seen: list[str] = []

    def observe(self, events: ScoredEvents) -> Sequence[OutputRecord]:
        self.seen.extend(events.event_id)
        covered: dict[str, int] = {}
        for partition, offset in zip(events.partition, events.offset, strict=True):
            covered[str(partition)] = max(covered.get(str(partition), 0), offset + 1)
        return [OutputRecord(self.topic, None, json.dumps(covered).encode())]


def create_topic(settings, name: str) -> None:
    """``name`` with the input topic's partitions (the settings' other topics exist already)."""
    ensure_topics(
        settings.model_copy(
            update={"topics": settings.topics.model_copy(update={"transactions": name})}
        )
    )


class ObservedTopic:
    """Reads the observer's records: which input offsets those readable at a moment cover."""

    def __init__(self, settings, topic: str) -> None:
        self._topic = topic
        self._partitions = range(settings.topics.partitions)
        self._consumer = Consumer(consumer_config(settings, f"observed-{uuid.uuid4().hex[:8]}"))
        self._consumer.assign([TopicPartition(topic, p, 0) for p in self._partitions])
        self._records: list[tuple[int, int, dict[str, int]]] = []  # partition, offset, covered
        self._next = dict.fromkeys(self._partitions, 0)

    def ends(self) -> dict[int, int]:
        """The end offsets now: each partition's high watermark."""
        return {
            p: self._consumer.get_watermark_offsets(TopicPartition(self._topic, p), 10, False)[1]
            for p in self._partitions
        }

    def covered(self, ends: dict[int, int] | None = None) -> dict[int, int]:
        """The highest next input offset per input partition that the records below ``ends``
        cover (all records, until a fetch comes back empty, without ``ends``)."""
        deadline = time.monotonic() + 30
        while ends is None or any(self._next[p] < end for p, end in ends.items()):
            assert time.monotonic() < deadline, "the observer's records could be read"
            records = [r for r in self._consumer.consume(10_000, 0.5) if r.error() is None]
            if not records and ends is None:
                break
            for r in records:
                self._records.append((r.partition(), r.offset(), json.loads(r.value())))
                self._next[r.partition()] = r.offset() + 1
        covered: dict[int, int] = {}
        for partition, offset, offsets in self._records:
            if ends is None or offset < ends[partition]:
                for input_partition, next_offset in offsets.items():
                    p = int(input_partition)
                    covered[p] = max(covered.get(p, 0), next_offset)
        return covered

    def close(self) -> None:
        self._consumer.close()


def committed(probe: Consumer, settings) -> dict[int, int]:
    partitions = [
        TopicPartition(settings.topics.transactions, p) for p in range(settings.topics.partitions)
    ]
    return {tp.partition: tp.offset for tp in probe.committed(partitions, 15) if tp.offset >= 0}


def test_observer_sees_every_event_once_and_its_records_precede_the_commit(make_settings):
    settings = make_settings(batch_size=200, checkpoint_interval_ms=100)
    topic = f"observed-{uuid.uuid4().hex[:10]}"
    create_topic(settings, topic)
    observer = OffsetsObserver(topic)
    observed = ObservedTopic(settings, topic)
    probe = Consumer(
        consumer_config(settings, settings.worker_group, **{"isolation.level": "read_uncommitted"})
    )  # never joins: reads commits
    options = ProduceOptions(events=8000, rate=1000, seed=11)
    result: dict = {}
    producing = threading.Thread(target=lambda: result.update(report=produce(settings, options)))
    checks = 0
    try:
        with in_thread(build_loop(settings, observers=[observer])) as running:
            wait_for(lambda: running.loop.stats.assigned, 60, "assignment")
            producing.start()
            deadline = time.monotonic() + 90
            while running.loop.stats.scored < options.events:
                assert time.monotonic() < deadline, "every event scored in time"
                # the commits first, then the observer's records readable after them
                commits = committed(probe, settings)
                seen = observed.covered(observed.ends())
                for partition, offset in commits.items():
                    assert seen.get(partition, 0) >= offset, (partition, offset, seen)
                checks += bool(commits)
            producing.join(60)
        final = committed(probe, settings)  # the worker's last checkpoint, on stop
        assert observed.covered() == final
    finally:
        probe.close()
        observed.close()
    assert checks >= 3, "commits were observed while the worker ran"
    assert len(observer.seen) == len(set(observer.seen)) == result["report"].valid == 8000
    assert sum(final.values()) == 8000
