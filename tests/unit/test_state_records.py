"""A checkpoint's changelog records go to the producer without an OutputRecord each, and a record
the producer refuses at once is settled like any other output (replaced or counted lost)."""

from __future__ import annotations

from stream_app.scoring.outputs import Outputs
from stream_app.scoring.records import OutputRecord, Undelivered


def test_state_records_are_queued_on_their_partition_and_a_refused_one_is_settled() -> None:
    replaced: list[Undelivered] = []

    def replace(failed: Undelivered) -> OutputRecord | None:
        replaced.append(failed)
        return None

    # no broker at all: records wait in the producer's queue, which is what is checked. Not a
    # refused address either: its connection errors are events that len(producer) counts until
    # served (7 runs in 150 counted 3 or 4)
    outputs = Outputs({"message.max.bytes": 1_000, "log_level": 0}, replace)
    outputs.send_state("state", [(0, b"a", b"1"), (3, b"b", b"x" * 5_000), (1, b"c", b"2")])

    assert outputs.outstanding() == 2
    assert [(f.topic, f.partition, f.key) for f in replaced] == [("state", 3, b"b")]
    assert outputs.counts.lost == 1
    outputs.producer.purge()
