"""FetchWatch: assigned partitions whose fetcher never started, or whose records wait behind an
unmoving last stable offset, are reported past the stall limit (by the consumer's statistics),
and forgotten once they fetch, move on or move away."""

from __future__ import annotations

import json

from stream_app.kafka.fetch_watch import FetchWatch


def statistics(
    fetch_states: dict[int, str],
    stable: int = 5,
    high: int = 5,
    topic: str = "t",
    unassigned: tuple[int, ...] = (),
) -> str:
    """A librdkafka statistics report: ``topic``'s assigned partitions (``desired``) in these
    fetch states, each with this last stable offset and high watermark, and others known but not
    assigned."""
    partitions = {
        str(p): {"fetch_state": state, "desired": True, "ls_offset": stable, "hi_offset": high}
        for p, state in fetch_states.items()
    }
    for p in (*unassigned, -1):  # -1: librdkafka's internal unassigned-partition queue
        partitions[str(p)] = {"fetch_state": "none", "desired": False}
    return json.dumps({"topics": {topic: {"partitions": partitions}}})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watch_at(clock: Clock, watch: FetchWatch, now: float, report: str) -> None:
    clock.now = now
    watch.on_statistics(report)


def test_a_partition_without_a_fetcher_is_reported_from_its_first_wait_past_the_stall_limit():
    clock = Clock()
    watch = FetchWatch(clock)
    watch_at(clock, watch, 100.0, statistics({0: "active", 1: "none"}))
    watch_at(clock, watch, 131.0, statistics({0: "active", 1: "none"}))
    assert watch.reasons(now=131.0, stall_s=30) == [
        "partitions assigned and not fetched for 31s (limit 30s; committed offsets held by an "
        "open transaction?): t:1"
    ]
    assert watch.reasons(now=131.0, stall_s=40) == []


def test_fetching_partitions_and_partitions_not_assigned_are_not_judged():
    clock = Clock()
    watch = FetchWatch(clock)
    watch_at(clock, watch, 100.0, statistics({0: "active", 1: "offset-query"}, unassigned=(5,)))
    assert watch.unfetched == {}


def test_a_partition_that_starts_fetching_or_is_revoked_is_forgotten():
    clock = Clock()
    watch = FetchWatch(clock)
    watch_at(clock, watch, 100.0, statistics({0: "none", 1: "stopped"}))
    assert sorted(watch.unfetched) == [("t", 0), ("t", 1)]
    # partition 0 fetches; partition 1 revoked: known, no longer assigned
    watch_at(clock, watch, 110.0, statistics({0: "active"}, unassigned=(1,)))
    assert watch.unfetched == {}
    assert watch.reasons(now=200.0, stall_s=30) == []


def test_records_behind_a_last_stable_offset_that_does_not_move_are_reported():
    clock = Clock()
    watch = FetchWatch(clock)
    watch_at(clock, watch, 100.0, statistics({0: "active", 1: "active"}, stable=40, high=90))
    watch_at(clock, watch, 131.0, statistics({0: "active", 1: "active"}, stable=40, high=120))
    assert watch.reasons(now=131.0, stall_s=30) == [
        "records held behind a last stable offset unmoved for 31s (limit 30s; a transaction "
        "left open?): t:0, t:1"
    ]


def test_a_last_stable_offset_that_moves_or_catches_up_is_no_hold():
    clock = Clock()
    watch = FetchWatch(clock)
    watch_at(clock, watch, 100.0, statistics({0: "active"}, stable=40, high=90))
    # transactions complete: the stable offset moves
    watch_at(clock, watch, 125.0, statistics({0: "active"}, stable=60, high=110))
    assert watch.reasons(now=150.0, stall_s=30) == []
    watch_at(clock, watch, 200.0, statistics({0: "active"}, stable=110, high=110))  # none open
    assert watch.held == {}
