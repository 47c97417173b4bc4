"""``stream-app bench retrain``, tiny: every key, and figures the warehouses agree with."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from rich.console import Console

from models.train import TrainingConfig
from stream_app.devtools.bench.retrain import RetrainBenchOptions, retrain_command
from stream_app.devtools.bench.retrain_loop import LoopDemo
from stream_app.devtools.demo_drift import DriftDemoOptions
from stream_app.devtools.demo_quality import utc
from stream_app.devtools.generator import AppliedDrift
from stream_app.settings import Settings
from stream_app.state.card import HOUR_MS
from tests.integration.test_demo import agrees, scored_rows
from tests.integration.test_demo_drift import RECOVERY_FIGURES, expected_recovery
from tests.integration.test_quality import view

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]


class ReadBackLoopDemo(LoopDemo):
    """The bench's drift demo, reading back what the figures come from before it stops."""

    read_back: dict[str, list[dict[str, Any]]]

    def _story(
        self, settings: Settings, drift: tuple[AppliedDrift, ...], run: dict[str, Any]
    ) -> None:
        super()._story(settings, drift, run)
        self.drift_ms, self.top_k = drift[0].event_time, settings.quality_top_k
        self.read_back = {
            "detections": view(
                settings,
                "SELECT input_partition, input_offset, detector, feature, "
                "toUnixTimestamp64Milli(event_time) AS event_ms, "
                "toUnixTimestamp64Milli(detected_time) AS detected_ms FROM drift_events",
            ),
            "runs": view(
                settings,
                "SELECT run_id, trigger, drift_event, candidate_version, wall_seconds, "
                "toUnixTimestamp64Milli(started_time) AS started_ms FROM retrain_runs",
            ),
            "acks": view(
                settings,
                "SELECT command, version, worker_id, status, "
                "toUnixTimestamp64Milli(acknowledged_at) AS acked_ms FROM control_events",
            ),
            "predictions": view(
                settings,
                "SELECT model_version, event_id, card_id, score, decision, "
                "toUnixTimestamp64Milli(event_time) AS event_ms FROM predictions",
            ),
            "labels": view(settings, "SELECT event_id, label_source, is_fraud FROM labels"),
        }


def test_bench_retrain_reports_figures_the_warehouses_agree_with(tmp_path):
    demos: list[ReadBackLoopDemo] = []

    def make_demo(options: DriftDemoOptions, console: Console) -> LoopDemo:
        demos.append(ReadBackLoopDemo(options, console))
        return demos[-1]

    options = RetrainBenchOptions(
        events=3_000,
        rounds=1,
        data_events=10_000,
        partitions=2,
        state_dir=tmp_path / "bench",
        training=TrainingConfig(events=20_000, num_trees=40),
        drift=DriftDemoOptions(shadow_events=8_000, watch_events=6_000, shadow_min_frauds=200),
    )
    out = io.StringIO()
    try:
        retrain_command(options, tmp_path / "retrain.json", Console(file=out, width=200), make_demo)
    finally:
        print(out.getvalue())  # the demo's story (each decision of the loop), shown on a failure
    report = json.loads((tmp_path / "retrain.json").read_text())
    assert {"command", "machine", "throughput", "loop", "seconds"} <= set(report)

    # throughput: one drain each way, the ratio of the medians, retrain runs during the drain
    figures = report["throughput"]
    without, with_ = figures["without_retrain"], figures["with_retrain"]
    assert len(without["events_per_s"]) == len(with_["events_per_s"]) == 1
    assert min(without["events_per_s"] + with_["events_per_s"]) > 0
    ratio = with_["median_events_per_s"] / without["median_events_per_s"]
    assert figures["ratio"] == round(ratio, 3)
    assert figures["target"] == {"ratio": 0.8, "met": figures["ratio"] >= 0.8}
    # runs go back to back: a gap between two is a process start, not a share of the drain
    (covered,) = with_["retrain_coverage"]
    assert covered >= 0.9, figures
    runs = figures["retrain_runs"]
    assert runs["started"] >= 1 and runs["failed"] == 0, runs
    # a run is recorded when it printed its decision, which it does once its row is sent;
    # the one stopped at the drain's end may have sent its row and not printed it yet
    assert runs["stopped"] <= 1 and runs["recorded"] + runs["stopped"] == runs["started"], runs
    assert runs["recorded"] <= runs["retrain_runs_rows"] <= runs["started"], runs
    assert all(set(shares) >= {"own_cpu_share", "other_cpu_share"} for shares in with_["cpu"])

    # the loop: what the figures say is what the demo's warehouse holds
    loop = report["loop"]
    (demo,) = demos
    back = demo.read_back
    (training,) = (r for r in back["runs"] if r["trigger"] == "drift")
    new = training["candidate_version"]
    assert loop["new_version"] == new and loop["detection"]["id"] == training["drift_event"]
    partition, offset, detector, feature = training["drift_event"].split(":")
    (detection,) = (
        d for d in back["detections"]
        if (d["input_partition"], d["input_offset"], d["detector"], d["feature"])
        == (int(partition), int(offset), detector, feature)
    )  # fmt: skip
    assert loop["detection"]["event_time"] == utc(detection["event_ms"])
    assert loop["detection"]["detected_time"] == utc(detection["detected_ms"])
    promotion = ("promote", new, "applied")
    acks = [a for a in back["acks"] if (a["command"], a["version"], a["status"]) == promotion]
    assert loop["workers_acknowledged"] == len(acks) == 1
    acked = max(a["acked_ms"] for a in acks)
    assert loop["promoted_time"] == utc(acked)
    wall = loop["wall_s"]
    assert wall["detection_to_promotion"] == round((acked - detection["detected_ms"]) / 1000, 1)
    assert wall["training"] == round(training["wall_seconds"], 1) > 0
    parts = wall["detection_to_training"] + wall["training"] + wall["training_to_promotion"]
    assert abs(parts - wall["detection_to_promotion"]) <= 0.2, wall
    assert min(wall.values()) > 0, wall  # the detection first, then the run, then the promotion
    first_new = min(p["event_ms"] for p in back["predictions"] if p["model_version"] == new)
    hours = loop["event_hours"]
    assert hours["detection_to_promotion"] == round(
        (first_new - detection["event_ms"]) / HOUR_MS, 2
    )
    assert hours["drift_to_promotion"] == round((first_new - demo.drift_ms) / HOUR_MS, 2) > 0

    # the quality figures: computed here from the demo's predictions and labels
    rows = scored_rows(back["predictions"], back["labels"])
    expected = expected_recovery(rows, demo.drift_ms, new, demo.top_k)
    assert set(loop["quality"]) == set(expected) and loop["k"] == demo.top_k
    for period, got in loop["quality"].items():
        want = expected[period]
        assert (got["labelled"], got["frauds"]) == (want["labelled"], want["frauds"]), period
        for name in RECOVERY_FIGURES:
            assert agrees(got[name], want[name]), (period, name, got[name], want[name])

    printed = out.getvalue()
    assert "worker throughput with retrain runs ÷ without" in printed
    assert f"version {new} promoted" in printed
