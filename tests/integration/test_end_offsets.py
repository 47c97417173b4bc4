"""End offsets are the broker's high watermarks: read to the end without an empty fetch."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from stream_app.kafka.config import consumer_config, producer_config, range_reader_config
from stream_app.kafka.drain import read_to_end
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def reader(settings) -> Consumer:
    return Consumer(consumer_config(settings, f"reader-{uuid.uuid4().hex[:8]}"))


def test_one_batch_of_ten_ends_at_ten_and_is_read_without_waiting_for_an_empty_fetch(
    make_settings,
):
    settings = make_settings()
    topic = settings.topics.control_status  # one partition
    producer = Producer(producer_config(settings, **{"linger.ms": 100}))  # one record batch
    for index in range(10):
        producer.produce(topic, str(index).encode())
    assert producer.flush(30) == 0
    consumer = reader(settings)
    try:
        partition = TopicPartition(topic, 0, OFFSET_BEGINNING)
        assert consumer.get_watermark_offsets(partition, timeout=10) == (0, 10)
        started = time.monotonic()
        records = list(read_to_end(consumer, partition, poll_s=5.0))
        elapsed = time.monotonic() - started
    finally:
        consumer.close()
    assert [r.offset() for r in records] == list(range(10))
    assert [r.value() for r in records] == [str(i).encode() for i in range(10)]
    assert elapsed < 5.0  # it stopped at the watermark, not after an empty fetch's wait


def test_a_transaction_marker_as_the_last_offset_is_stepped_over(make_settings):
    settings = make_settings()
    topic = settings.topics.control_status
    transactional = {"transactional.id": f"tx-{uuid.uuid4().hex[:8]}", "enable.idempotence": True}
    producer = Producer(producer_config(settings, **transactional))
    producer.init_transactions(30)
    producer.begin_transaction()
    for index in range(10):
        producer.produce(topic, str(index).encode())
    producer.commit_transaction(30)
    consumer = reader(settings)
    try:
        partition = TopicPartition(topic, 0, OFFSET_BEGINNING)
        # a read_committed consumer's end is the last stable offset: once the coordinator has
        # written the commit marker, the ten records and the marker
        wait_for(
            lambda: consumer.get_watermark_offsets(partition, timeout=10) == (0, 11),
            30,
            "the commit marker",
        )
        records = list(read_to_end(consumer, partition, poll_s=0.5, timeout_s=20))
    finally:
        consumer.close()
    assert [r.value() for r in records] == [str(i).encode() for i in range(10)]


def test_a_range_reader_reads_partitions_one_after_the_other_without_waiting_on_each(
    make_settings,
):
    """The worker's changelog restore reads its partitions so. With librdkafka's 500-ms fetch
    wait, each partition's watermark request queued behind the fetch its predecessor had left
    waiting at its end: eight partitions of ten records took 4.05-4.08 s (seven waits of 500 ms by
    that rule); with a range reader's 10-ms wait, 0.60-0.61 s."""
    settings = make_settings()
    topic, count = settings.topics.card_state, settings.topics.partitions
    producer = Producer(producer_config(settings))
    for p in range(count):
        for key in range(10):
            producer.produce(topic, b"state", f"card-{key}".encode(), partition=p)
    assert producer.flush(30) == 0
    partitions = [TopicPartition(topic, p % count, OFFSET_BEGINNING) for p in range(8)]
    consumer = Consumer(range_reader_config(settings, f"reader-{uuid.uuid4().hex[:8]}"))
    try:
        started = time.monotonic()
        for partition in partitions:
            assert len(list(read_to_end(consumer, partition))) == 10
            consumer.unassign()
        elapsed = time.monotonic() - started
    finally:
        consumer.close()
    assert elapsed < 2.0, elapsed
