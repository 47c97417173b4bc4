"""The worker's batch intake: what is queued is taken at once, an idle worker waits for the first
record only, and a batch never exceeds its size."""

from __future__ import annotations

from typing import Any

import pytest

from stream_app.scoring.loop import next_batch

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
    assert next_batch(queue.consume, 5000, WAIT_S) == [1, 2, 3]
    assert queue.calls == [(5000, 0)]


def test_a_batch_never_exceeds_its_size() -> None:
    queue = FetchQueue(ready=list(range(12)))
    assert next_batch(queue.consume, 5, WAIT_S) == [0, 1, 2, 3, 4]
    assert next_batch(queue.consume, 5, WAIT_S) == [5, 6, 7, 8, 9]


def test_an_idle_worker_waits_for_the_first_record_then_takes_what_came_with_it() -> None:
    queue = FetchQueue(ready=[], arriving=[7, 8, 9])
    assert next_batch(queue.consume, 5000, WAIT_S) == [7, 8, 9]
    assert queue.calls == [(5000, 0), (1, WAIT_S), (4999, 0)]


def test_nothing_arriving_within_the_wait_is_an_empty_batch() -> None:
    queue = FetchQueue(ready=[])
    assert next_batch(queue.consume, 5000, WAIT_S) == []
    assert queue.calls == [(5000, 0), (1, WAIT_S)]


@pytest.mark.parametrize(("ready", "arriving"), [([4, 5], []), ([], [6, 7])])
def test_batches_of_one(ready: list[int], arriving: list[int]) -> None:
    queue = FetchQueue(ready, arriving)
    assert next_batch(queue.consume, 1, WAIT_S) == [(ready or arriving)[0]]
