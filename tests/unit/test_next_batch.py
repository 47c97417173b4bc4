"""The worker's batch intake: what is queued is taken at once, an idle worker waits for the first
record only, and a batch never exceeds its size."""

from __future__ import annotations

from typing import Any

import pytest

from stream_app.scoring.loop import next_batch
from tests.unit.conftest import INPUT_TOPIC, FakeRecord

WAIT_S = 0.05


class FetchQueue:
    """Records already fetched (``ready``) and records that arrive during a wait (``arriving``),
    served the way ``Consumer.consume(n, timeout)`` serves them; every call is kept."""

    def __init__(self, ready: list[int], arriving: list[int] | None = None) -> None:
        self.ready = ready
        self.arriving = arriving or []
        self.calls: list[tuple[int, float]] = []

    def consume(self, count: int, timeout: float) -> list[Any]:
        self.calls.append((count, timeout))
        if not self.ready and timeout > 0:
            self.ready, self.arriving = self.arriving, []
        taken, self.ready = self.ready[:count], self.ready[count:]
        return taken


def test_queued_records_are_taken_without_waiting() -> None:
    queue = FetchQueue(ready=[1, 2, 3])
    assert next_batch(queue.consume, 5000, WAIT_S, set()) == [1, 2, 3]
    assert queue.calls == [(5000, 0)]


def test_a_batch_never_exceeds_its_size() -> None:
    queue = FetchQueue(ready=list(range(12)))
    assert next_batch(queue.consume, 5, WAIT_S, set()) == [0, 1, 2, 3, 4]
    assert next_batch(queue.consume, 5, WAIT_S, set()) == [5, 6, 7, 8, 9]


def test_an_idle_worker_waits_for_the_first_record_then_takes_what_came_with_it() -> None:
    queue = FetchQueue(ready=[], arriving=[7, 8, 9])
    assert next_batch(queue.consume, 5000, WAIT_S, set()) == [7, 8, 9]
    assert queue.calls == [(5000, 0), (1, WAIT_S), (4999, 0)]


def test_nothing_arriving_within_the_wait_is_an_empty_batch() -> None:
    queue = FetchQueue(ready=[])
    assert next_batch(queue.consume, 5000, WAIT_S, set()) == []
    assert queue.calls == [(5000, 0), (1, WAIT_S)]


@pytest.mark.parametrize(("ready", "arriving"), [([4, 5], []), ([], [6, 7])])
def test_batches_of_one(ready: list[int], arriving: list[int]) -> None:
    queue = FetchQueue(ready, arriving)
    assert next_batch(queue.consume, 1, WAIT_S, set()) == [(ready or arriving)[0]]


def record(partition: int, offset: int) -> FakeRecord:
    return FakeRecord(b"{}", b"card", partition, offset)


def test_records_of_a_partition_revoked_by_the_second_call_are_dropped() -> None:
    revoked: set[tuple[str, int]] = set()
    first = [record(0, 40)]
    calls = iter([[], first, [record(1, 7), record(0, 40)]])

    def consume(_count: int, _timeout: float) -> list[Any]:
        batch = next(calls)
        if batch is not first and batch:  # the last call serves a rebalance: 0 revoked, given back
            revoked.add((INPUT_TOPIC, 0))
        return batch

    batch = next_batch(consume, 5000, WAIT_S, revoked)
    # the stale copy is gone; the one read again after the reassignment stays, once
    assert [(r.partition(), r.offset()) for r in batch] == [(1, 7), (0, 40)]


def test_records_of_partitions_kept_are_not_dropped() -> None:
    revoked = {(INPUT_TOPIC, 0)}  # by an earlier batch's rebalance: cleared before the second call
    calls = iter([[], [record(0, 1)], [record(0, 2)]])
    batch = next_batch(lambda _n, _t: next(calls), 5000, WAIT_S, revoked)
    assert [r.offset() for r in batch] == [1, 2]


LINGER_S = 0.005


def test_a_short_batch_lingers_once_for_more_records() -> None:
    queue = FetchQueue(ready=[1, 2, 3], arriving=[4, 5])
    assert next_batch(queue.consume, 5000, WAIT_S, set(), LINGER_S) == [1, 2, 3, 4, 5]
    assert queue.calls == [(5000, 0), (4997, LINGER_S)]


def test_a_full_batch_does_not_linger() -> None:
    queue = FetchQueue(ready=list(range(8)), arriving=[9])
    assert next_batch(queue.consume, 5, WAIT_S, set(), LINGER_S) == [0, 1, 2, 3, 4]
    assert queue.calls == [(5, 0)]


def test_an_idle_worker_lingers_after_the_first_record() -> None:
    queue = FetchQueue(ready=[], arriving=[7])
    assert next_batch(queue.consume, 5000, WAIT_S, set(), LINGER_S) == [7]
    assert queue.calls == [(5000, 0), (1, WAIT_S), (4999, LINGER_S)]
