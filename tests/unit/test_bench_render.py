"""The benchmark's summary renders whatever a run could measure: a latency phase too short for two
full 5-s windows has no climb ratio (``null`` in the JSON), and its table says so instead of failing
after the run (``stream-app bench --latency-seconds 5`` ended in a TypeError)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from stream_app.devtools.bench.render import summary_table

#: written by `stream-app bench --events 5000 --latency-seconds 5 --warmup-seconds 3
#: --scale-pairs 2`
SHORT_RUN = Path(__file__).parent / "data" / "bench_report_short_latency.json"


def test_a_run_without_a_climb_ratio_renders_and_says_why() -> None:
    report = json.loads(SHORT_RUN.read_text())
    assert report["latency_climb_ratio"] is None
    assert len(report["phases"]["latency"]["latency_ms_by_5s"]) > 1  # the row is shown
    out = io.StringIO()
    Console(file=out, width=200).print(summary_table(report))
    assert "n/a (fewer than two full 5-s windows)" in out.getvalue()
    assert "median of 1.31x · 1.23x" in out.getvalue()  # the scale pairs, in the order they ran
