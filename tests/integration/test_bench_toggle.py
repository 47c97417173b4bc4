"""``stream-app bench monitoring`` / ``online-tap``, tiny: the setting reaches the worker (its
``observe`` stage works only with it on), both sides drain the whole backlog, the ratios agree
with the figures they come from."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from models.train import TrainingConfig
from stream_app.devtools.bench.toggle import ToggleBenchOptions, toggle_command

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]


def test_the_drift_monitors_on_vs_off(tmp_path) -> None:
    options = ToggleBenchOptions(
        "drift_monitoring",
        events=3000,
        rounds=1,
        partitions=2,
        state_dir=tmp_path / "bench",
        training=TrainingConfig(events=20_000),
    )
    out = tmp_path / "toggle.json"
    toggle_command(options, out, Console(file=io.StringIO()))
    report = json.loads(out.read_text())
    off, on = report["off"], report["on"]
    assert off["observe_us_per_event"][0] < 0.1 < on["observe_us_per_event"][0]
    for side in (off, on):
        assert len(side["events_per_s"]) == 1 and side["events_per_s"][0] > 0
        assert side["worker_cpu_s_per_million"][0] > 0
    assert report["ratio_on_to_off"] == round(
        on["median_events_per_s"] / off["median_events_per_s"], 3
    )
    assert report["worker_cpu_ratio_on_to_off"] == round(
        on["median_worker_cpu_s_per_million"] / off["median_worker_cpu_s_per_million"], 3
    )
