"""How soon the sink makes a record queryable at its default cadence: the benchmark's
warehouse visibility target (p99 ≤ 1 s) includes it."""

from __future__ import annotations

import statistics
import time

import pytest
from confluent_kafka import Producer

from stream_app.codecs.json import JsonCodec
from stream_app.devtools.generator import TransactionGenerator
from stream_app.kafka.config import producer_config
from stream_app.processes import wait_until
from stream_app.settings import Settings
from tests.integration.conftest import count

pytestmark = pytest.mark.integration


def test_a_trickle_of_events_is_queryable_within_a_second_at_the_default_cadence(
    make_settings, running_sink
):
    default = Settings.model_fields["sink_flush_interval_ms"].default
    settings = make_settings(sink_flush_interval_ms=default)  # not the suite's faster one
    producer = Producer(producer_config(settings, **{"linger.ms": 0}))
    codec, topic = JsonCodec(), settings.topics.transactions
    events = (g.event for g in TransactionGenerator(seed=5))
    visible_ms = []
    with running_sink(settings):
        for event in (next(events) for _ in range(8)):
            sent = time.monotonic()
            producer.produce(topic, codec.encode(event), event.card_id.encode())
            assert producer.flush(10) == 0
            query = f"SELECT count() FROM events WHERE event_id = '{event.event_id}'"  # noqa: S608
            wait_until(lambda q=query: count(settings, q) == 1, 60, "stored", interval_s=0.02)
            visible_ms.append((time.monotonic() - sent) * 1000)
    # the first one waited for the sink to join its group; each later one arrives alone, in a
    # fetch the broker holds until its wait runs out, and waits in the buffer for the flush
    assert statistics.median(visible_ms[1:]) < 1000, visible_ms
