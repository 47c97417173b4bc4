"""The latency phase's paced producer offers its rate from its first record, never in a burst."""

from __future__ import annotations

from stream_app.devtools.bench.paced import PacedProducer
from tests.integration.conftest import read_topic


def test_paced_producer_sends_no_burst_after_its_first_record(make_settings):
    settings = make_settings()
    rate, events = 2_000, 6_000
    producer = PacedProducer(settings, rate, events, seed=3)
    producer.start()
    producer.join(60)
    assert producer.failure is None
    assert producer.sent == events

    created = sorted(
        r.timestamp()[1] for r in read_topic(settings, settings.topics.transactions, events)
    )
    assert len(created) == events
    # records sent by each CreateTime beyond the rate's share since the first one: a producer
    # that starts late and catches up sends hundreds at once; 50 ms of the rate is allowed
    ahead = max(index - rate * (ms - created[0]) / 1000 for index, ms in enumerate(created))
    assert ahead <= rate * 0.05, ahead
