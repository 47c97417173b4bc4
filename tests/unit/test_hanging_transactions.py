"""abort_hanging_transactions: what find-hanging lists from before the node's start is aborted, by
its start offset; a transaction of this run, or a tool that fails, is left alone and logged."""

from __future__ import annotations

import sys
from pathlib import Path

from stream_app.kafka.hanging import TOOL, abort_hanging_transactions

COLUMNS = "Topic Partition ProducerId ProducerEpoch CoordinatorEpoch StartOffset LastTimestamp"
HEADER = "\t".join([*COLUMNS.split(), "Duration(min)", ""])
#: a stand-in for the JVM: prints the table for find-hanging, records each other call
FAKE_TOOL = """\
import sys
args = sys.argv[1:]
assert args[0] == {tool!r} and args[1] == "--bootstrap-server", args
if args[3] == "find-hanging":
    print({table!r})
else:
    with open({calls!r}, "a") as calls:
        calls.write(" ".join(args[3:]) + "\\n")
    sys.exit(1 if "--partition 9" in " ".join(args) else 0)
"""


def fake_java(tmp_path: Path, rows: list[str]) -> tuple[list[str], Path]:
    calls = tmp_path / "calls.txt"
    script = tmp_path / "tool.py"
    table = "\n".join([HEADER, *rows])
    script.write_text(FAKE_TOOL.format(tool=TOOL, table=table, calls=str(calls)))
    return [sys.executable, str(script)], calls


def test_transactions_open_since_before_the_start_are_aborted_and_newer_ones_left(tmp_path):
    java, calls = fake_java(
        tmp_path,
        [
            "__consumer_offsets \t3 \t1 \t0 \t0 \t244 \t1000\t6 \t",
            "t-predictions \t1 \t1 \t0 \t0 \t1577 \t1999\t6 \t",
            # written since the start: a client's own
            "t-predictions \t2 \t7 \t0 \t0 \t15 \t2000\t0 \t",
        ],
    )
    aborted = abort_hanging_transactions(java, "127.0.0.1:1", broker_id=1, started_ms=2000)
    assert [(t.topic, t.partition) for t in aborted] == [
        ("__consumer_offsets", 3),
        ("t-predictions", 1),
    ]
    assert sorted(calls.read_text().splitlines()) == [
        "abort --topic __consumer_offsets --partition 3 --start-offset 244",
        "abort --topic t-predictions --partition 1 --start-offset 1577",
    ]


def test_an_abort_that_fails_is_logged_and_not_counted(tmp_path, caplog):
    java, _ = fake_java(tmp_path, ["t-predictions \t9 \t1 \t0 \t0 \t5 \t1000\t6 \t"])
    assert abort_hanging_transactions(java, "127.0.0.1:1", broker_id=1, started_ms=2000) == []
    assert "a hanging transaction not aborted" in caplog.text


def test_a_find_that_fails_is_logged_and_the_node_serves_anyway(tmp_path, caplog):
    java = [sys.executable, "-c", "import sys; sys.exit(3)"]
    assert abort_hanging_transactions(java, "127.0.0.1:1", broker_id=1, started_ms=2000) == []
    assert "hanging transactions not looked for" in caplog.text
