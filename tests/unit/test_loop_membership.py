"""The scoring loop asks its consumer for its group membership once a second, not every turn."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from stream_app.kafka.membership import ANSWER_S, Membership
from stream_app.scoring.checkpoint import Uncommitted
from stream_app.scoring.loop import LoopStats, ScoringLoop


class Consumer:
    """A group member with one partition, nothing to lag behind; counts ``memberid()`` calls."""

    def __init__(self) -> None:
        self.asked = 0

    def memberid(self) -> str:
        self.asked += 1
        return "rdkafka-1"

    def assignment(self) -> list[object]:
        return []

    def position(self, partitions: list[object]) -> list[object]:
        return partitions


def test_many_turns_within_a_second_ask_the_membership_once() -> None:
    loop = ScoringLoop.__new__(ScoringLoop)  # only what a turn's bookkeeping reads
    consumer = Consumer()
    loop._consumer = consumer  # type: ignore[assignment]
    loop._checkpoints = SimpleNamespace(commits_dropped=0, uncommitted=Uncommitted())  # type: ignore[assignment]
    loop._membership = Membership()
    loop.stats = LoopStats(member_at=0.0)
    for _ in range(100):
        loop._observe(scored=True)
    assert consumer.asked == 1
    assert loop.stats.member_at > 0.0  # the turn that asked found it a member


class BusyGroupThread:
    """A consumer whose ``memberid()`` waits, as librdkafka's does behind a synchronous commit in
    flight when the broker went away, until ``free`` is set."""

    def __init__(self) -> None:
        self.free = threading.Event()
        self.asked = 0

    def memberid(self) -> str:
        self.asked += 1
        self.free.wait(30)
        return "rdkafka-1"


def test_a_membership_question_left_unanswered_does_not_hold_the_scoring_thread() -> None:
    """Before, ``confirmed`` waited for ``memberid()`` as long as it took: 18 s into a stop with
    the broker away, until the stop's watchdog ended the worker with exit code 75."""
    consumer, membership = BusyGroupThread(), Membership(every_s=1.0)
    started = time.monotonic()
    assert membership.confirmed(consumer, 10.0) is False  # type: ignore[arg-type]
    assert time.monotonic() - started < ANSWER_S + 0.5
    assert membership.confirmed(consumer, 11.0) is False  # type: ignore[arg-type]
    assert consumer.asked == 1  # still unanswered: not asked a second time
    consumer.free.set()
    time.sleep(0.2)  # the first question answered meanwhile
    assert membership.confirmed(consumer, 12.0) is True  # type: ignore[arg-type]
    assert consumer.asked == 2
