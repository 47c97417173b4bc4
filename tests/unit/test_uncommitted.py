"""How long scored records have waited for their commit, for ``/health``: a worker whose outputs
are never acknowledged keeps scoring (its producer buffers) but commits nothing, and must say so
rather than answer ok until its buffer fills."""

from __future__ import annotations

import time
from typing import Any

from stream_app.scoring.checkpoint import Checkpointer
from stream_app.state.store import CardStore


class Outputs:
    """What the checkpointer asks of the outputs; ``acked`` says whether all were acknowledged."""

    def __init__(self) -> None:
        self.acked = False

    def send(self, _records: Any) -> None: ...

    def send_state(self, _topic: str, _records: Any) -> None: ...

    def outstanding(self) -> int:
        return 0 if self.acked else 10

    def flush(self, _timeout: float) -> None: ...

    def acknowledged(self) -> bool:
        return self.acked

    def check_acknowledged(self) -> None: ...


class Consumer:
    def __init__(self) -> None:
        self.commits: list[Any] = []

    def commit(self, offsets: Any, asynchronous: bool) -> None:
        self.commits.append(offsets)


def test_scored_records_date_their_wait_until_their_checkpoint_commits() -> None:
    outputs, consumer = Outputs(), Consumer()
    checkpoints = Checkpointer(
        CardStore(),
        consumer,
        outputs,
        "state",
        interval_s=0.0,
        chunk_cards=8,  # type: ignore[arg-type]
    )
    assert checkpoints.uncommitted.since is None  # idle: nothing waits
    before = time.monotonic()
    checkpoints.scored({("in", 0): 10})
    first = checkpoints.uncommitted.since
    assert first is not None and first >= before
    checkpoints.scored({("in", 0): 20})
    assert checkpoints.uncommitted.since == first  # dated by the oldest batch

    assert not checkpoints.step()  # cut, then outputs not acknowledged: waits
    assert not checkpoints.step()
    checkpoints.scored({("in", 0): 30})  # scored meanwhile, after the cut
    assert checkpoints.uncommitted.since == first and consumer.commits == []

    outputs.acked = True
    assert checkpoints.step()  # the cut commits; the batch scored after it still waits
    assert len(consumer.commits) == 1
    since = checkpoints.uncommitted.since
    assert since is not None and since > first
    assert checkpoints.step() and checkpoints.uncommitted.since is None
