"""``stream-app bench`` on a small scale: every figure present, positive, finite and consistent."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pytest
from rich.console import Console

from models.train import TrainingConfig
from stream_app.devtools.bench.options import BenchOptions, LatencyOptions
from stream_app.devtools.bench.report import SINK_STAGES, TARGETS, WORKER_STAGES
from stream_app.devtools.bench.runner import bench_command
from stream_app.features import FEATURE_NAMES

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]


def positive_finite(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def test_bench_reports_every_figure_and_writes_json(infrastructure, tmp_path):
    options = BenchOptions(
        events=5_000,
        # two full 5 s windows after the 2 s warm-up (the climb figure needs two: 2 to 5 s and
        # 5 to 10 s; 10 to 12 s holds too few events to count); ~1 % of events alert
        latency=LatencyOptions(seconds=12, rate=1_000),
        latency_warmup_seconds=3,
        state_dir=tmp_path / "bench",
        training=TrainingConfig(events=20_000, num_trees=40),
        partitions=2,  # fewer than the default 4: a smaller test, still several per reader
        scale_pairs=1,  # the median of several: ScaleResult's doctest
        # the bare loop's warehouse is opened in this process: the session's, never a child's
        bare_warehouse_dsn=infrastructure.warehouse_dsn,
    )
    out = io.StringIO()
    bench_command(options, tmp_path / "bench.json", True, Console(file=out, width=120))

    report = json.loads((tmp_path / "bench.json").read_text())
    for key in ("events_per_s", "events_per_s_avro", "avro_cost_ratio", "bare_events_per_s"):
        assert positive_finite(report[key]), key
    assert positive_finite(report["ratio_to_bare"])
    # the yardstick does the worker's work: the same alerts from the same backlog
    published, json_phase = report["alerts_published"], report["phases"]["throughput_json"]
    # on a mismatch, which events only one side alerted on and whether the worker read a record
    # twice or dead-lettered one: what tells a replay, a reordered backlog or a state bug apart
    evidence = (
        report["alerts_only_in"],
        json_phase["worker_scored"],
        json_phase["worker_dead_lettered"],
    )
    assert published["bare"] == published["worker_json"] > 0, evidence
    assert report["alerts_only_in"] == {"worker_json": [], "bare": []}, evidence
    latency, visible = report["latency_ms"], report["visibility_ms"]
    assert all(positive_finite(latency[p]) for p in ("p50", "p95", "p99", "max"))
    assert latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"], latency
    assert latency["samples"] >= 9_000, latency  # ~10,000 offered after the warm-up
    assert positive_finite(visible["p50"]) and visible["p50"] <= visible["p99"], visible
    assert positive_finite(report["latency_warmup"]["latency_ms"]["p99"])  # reported apart
    assert positive_finite(report["latency_climb_ratio"])
    windows = report["phases"]["latency"]["latency_ms_by_5s"]
    full = [window for window in windows if window["samples"] >= 2_500]  # 3,000 and 5,000
    assert len(full) == 2 and len(windows) >= 3, windows  # the short last one: not the climb
    assert report["latency_climb_ratio"] == round(full[-1]["p99"] / full[0]["p99"], 3)
    assert all(positive_finite(report["peak_rss_mb"][p]) for p in ("worker", "sink"))
    assert positive_finite(report["phases"]["latency"]["worker_mean_batch_events"])
    split = report["phases"]["latency"]["latency_split_ms"]
    for part in ("to_worker_output", "worker_output_to_consumer"):
        assert split[part]["samples"] == latency["samples"], part
        assert positive_finite(split[part]["p50"]), part
        assert split[part]["p50"] <= split[part]["p99"] <= latency["max"], part
    assert positive_finite(report["swap_pause_ms"]) and positive_finite(report["shadow_cost_ratio"])
    alerts = report["alert_latency_ms"]
    assert alerts["samples"] > 0, alerts
    assert positive_finite(alerts["p50"]) and alerts["p50"] <= alerts["p99"], alerts
    scale = report["scale"]
    assert scale["events"] == 5_000
    for run in ("one_worker", "two_workers"):
        figures = scale[run]
        assert figures["scored"] == figures["stored_rows"] == figures["distinct_events"] == 5_000
        for key in ("seconds", "events_per_s", "cpu_s", "cpu_s_per_million_events"):
            assert positive_finite(figures[key]), (run, key)
    assert scale["scored_once"] is True
    per_million = [scale[run]["cpu_s_per_million_events"] for run in ("one_worker", "two_workers")]
    assert scale["cpu_ratio"] == pytest.approx(per_million[1] / per_million[0], rel=0.01)
    assert scale["pair_cpu_ratios"] == [scale["cpu_ratio"]]
    # every phase: the broker's CPU share and its peak and final RSS over that phase
    phases = {
        "throughput_json",
        "throughput_avro",
        "bare",
        "scale",
        "latency_warmup",
        "latency",
        "swap",
    }
    assert set(report["contention"]) == set(report["broker_rss_mb"]) == phases
    for phase, rss in report["broker_rss_mb"].items():
        assert positive_finite(rss["end"]) and rss["peak"] >= rss["end"], (phase, rss)
        assert positive_finite(report["contention"][phase]["broker_cpu_share"]), phase
    targets = report["targets"]
    assert set(targets) == set(TARGETS)
    assert targets["latency_p99_ms"]["value"] == latency["p99"]
    assert targets["scale_cpu_ratio"]["value"] == scale["cpu_ratio"]
    assert targets["ratio_to_bare"]["met"] == (report["ratio_to_bare"] >= 1.0)
    assert report["partitions"] == 2
    assert report["model"]["trees"] == 40
    assert 2 <= report["model"]["leaves"] <= 31
    assert report["model"]["features"] == len(FEATURE_NAMES)
    stages = report["stage_us_per_event"]
    assert set(stages["worker"]) >= set(WORKER_STAGES) and set(stages["sink"]) >= set(SINK_STAGES)
    # every stage that does work took time; the sink's "consume" is mostly its waits, taken as a
    # difference of two snapshots, and was 0.0 in two of four suite runs on the Kafka broker
    # (cause not found yet): present and finite, not necessarily positive
    not_positive = {
        f"{side}.{stage}": us
        for side in ("worker", "sink")
        for stage, us in stages[side].items()
        if not positive_finite(us) and (side, stage) != ("sink", "consume")
    }
    assert not not_positive, not_positive
    assert math.isfinite(stages["sink"]["consume"]) and stages["sink"]["consume"] >= 0
    assert "worker_rss_soak" not in report  # only with --soak (kept out: a fourth start-up)
    assert positive_finite(report["machine"]["nproc"])
    assert report["machine"]["python"] and report["machine"]["platform"]
    printed = out.getvalue()
    assert "stream-app bench" in printed and "µs per event" in printed
    assert "scale-out" in printed and "broker RSS" in printed
