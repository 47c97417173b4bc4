"""FetchWatch: assigned partitions whose fetcher never started are reported past the stall limit
(by the consumer's statistics), and forgotten once they fetch or move away."""

from __future__ import annotations

import json

from confluent_kafka import TopicPartition

from stream_app.kafka.fetch_watch import FetchWatch


def statistics(
    fetch_states: dict[int, str], stable: int = 5, high: int = 5, topic: str = "t"
) -> str:
    """A librdkafka statistics report with these fetch states for ``topic``'s partitions, each
    with this last stable offset and high watermark."""
    partitions = {
        str(p): {"fetch_state": state, "ls_offset": stable, "hi_offset": high}
        for p, state in fetch_states.items()
    }
    return json.dumps({"topics": {topic: {"partitions": {**partitions, "-1": {}}}}})


class Assigned:
    """What a FetchWatch uses of a consumer: its assignment (counted: a round trip each)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = list(range(partitions))
        self.asked = 0

    def assignment(self) -> list[TopicPartition]:
        self.asked += 1
        return [TopicPartition("t", p) for p in self.partitions]


def test_a_partition_without_a_fetcher_is_reported_from_its_first_wait_past_the_stall_limit():
    watch, consumer = FetchWatch(), Assigned(2)
    watch.on_statistics(statistics({0: "active", 1: "none"}))
    watch.check(consumer, now=100.0)
    watch.check(consumer, now=131.0)
    assert watch.reasons(now=131.0, stall_s=30) == [
        "partitions assigned and not fetched for 31s (limit 30s; committed offsets held by an "
        "open transaction?): t:1"
    ]
    assert watch.reasons(now=131.0, stall_s=40) == []


def test_fetching_partitions_and_partitions_the_statistics_do_not_mention_are_not_judged():
    watch, consumer = FetchWatch(), Assigned(3)
    watch.check(consumer, now=0.0)  # no statistics yet
    watch.on_statistics(statistics({0: "active", 1: "offset-query", 5: "none"}))
    watch.check(consumer, now=100.0)
    assert watch.unfetched == {}


def test_a_partition_that_starts_fetching_or_is_revoked_is_forgotten():
    watch, consumer = FetchWatch(), Assigned(2)
    watch.on_statistics(statistics({0: "none", 1: "stopped"}))
    watch.check(consumer, now=100.0)
    assert sorted(watch.unfetched) == [("t", 0), ("t", 1)]
    watch.on_statistics(statistics({0: "active", 1: "stopped"}))
    consumer.partitions = [0]  # partition 1 revoked
    watch.check(consumer, now=110.0)
    assert watch.unfetched == {}
    assert watch.reasons(now=200.0, stall_s=30) == []


def test_the_assignment_is_asked_at_most_once_per_interval():
    watch, consumer = FetchWatch(every_s=1.0), Assigned(1)
    for now in (10.0, 10.3, 10.9, 11.0):
        watch.check(consumer, now=now)
    assert consumer.asked == 2


def test_records_behind_a_last_stable_offset_that_does_not_move_are_reported():
    watch, consumer = FetchWatch(), Assigned(2)
    watch.on_statistics(statistics({0: "active", 1: "active"}, stable=40, high=90))
    watch.check(consumer, now=100.0)
    watch.on_statistics(statistics({0: "active", 1: "active"}, stable=40, high=120))
    watch.check(consumer, now=131.0)
    assert watch.reasons(now=131.0, stall_s=30) == [
        "records held behind a last stable offset unmoved for 31s (limit 30s; a transaction "
        "left open?): t:0, t:1"
    ]


def test_a_last_stable_offset_that_moves_or_catches_up_is_no_hold():
    watch, consumer = FetchWatch(), Assigned(1)
    watch.on_statistics(statistics({0: "active"}, stable=40, high=90))
    watch.check(consumer, now=100.0)
    watch.on_statistics(statistics({0: "active"}, stable=60, high=110))  # transactions complete
    watch.check(consumer, now=125.0)
    assert watch.reasons(now=150.0, stall_s=30) == []
    watch.on_statistics(statistics({0: "active"}, stable=110, high=110))  # nothing open
    watch.check(consumer, now=200.0)
    assert watch.held == {}
