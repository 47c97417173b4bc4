"""A checkpoint written a chunk per turn commits its offsets only once all its state is out."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from stream_app.kafka.config import consumer_config, producer_config
from stream_app.scoring.checkpoint import Checkpointer
from stream_app.scoring.pipeline import OutputRecord
from stream_app.state.store import CardStore
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration

CARDS = 50
CHUNK = 8


def committed(consumer: Consumer, topic: str) -> int:
    (partition,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    return partition.offset


def test_offsets_are_committed_after_the_last_chunk_of_the_cut(make_settings):
    settings = make_settings()
    topic = settings.topics.transactions
    store = CardStore()
    cards = [f"card-{i}" for i in range(CARDS)]
    store.partition(0).velocity_features(cards, ["m"] * CARDS, [1.0] * CARDS, [1_000] * CARDS)
    consumer = Consumer(consumer_config(settings, settings.worker_group))
    producer = Producer(producer_config(settings, **{"linger.ms": 1}))
    errors: list[KafkaError] = []

    def produce(records: list[OutputRecord]) -> None:
        for r in records:
            producer.produce(r.topic, r.value, r.key, partition=r.partition)

    checkpoints = Checkpointer(
        store=store,
        consumer=consumer,
        producer=producer,
        produce=produce,
        delivery_error=lambda: errors[0] if errors else None,
        state_topic=settings.topics.card_state,
        interval_s=0.0,
        chunk_cards=CHUNK,
    )
    try:
        checkpoints.scored({(topic, 0): 100})
        turns = 0
        while not checkpoints.step():
            turns += 1
            if store.cut_pending():  # chunks still to write: nothing committed yet
                assert committed(consumer, topic) < 0
            assert turns < 1000
        assert turns >= CARDS // CHUNK  # one chunk per turn
        assert committed(consumer, topic) == 100
        # later batches: state and offsets at once, on revoke or stop
        store.partition(0).velocity_features(cards[:3], ["m"] * 3, [2.0] * 3, [2_000] * 3)
        checkpoints.scored({(topic, 0): 130})
        checkpoints.complete()
        assert committed(consumer, topic) == 130
    finally:
        consumer.close()
    state = read_topic(settings, settings.topics.card_state, CARDS + 3)
    assert sorted(m.key() for m in state) == sorted(
        [c.encode() for c in cards] + [c.encode() for c in cards[:3]]
    )
