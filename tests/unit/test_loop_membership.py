"""The scoring loop asks its consumer for its group membership once a second, not every turn."""

from __future__ import annotations

from types import SimpleNamespace

from stream_app.kafka.membership import Membership
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
