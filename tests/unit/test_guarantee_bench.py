"""``stream-app bench guarantees``: an unmeasured drain per guarantee first, then each round's runs
in both guarantees, alternated, each paced run's deployment warmed first by a paced run reported
apart and kept out of the figures."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from stream_app.devtools.bench import guarantees
from stream_app.devtools.bench.guarantees import GuaranteeBenchOptions, run_guarantee_bench
from stream_app.devtools.bench.options import LatencyOptions
from stream_app.devtools.bench.stack import BenchStack


@dataclass
class FakeStack:
    guarantee: str = "at_least_once"
    transaction_interval_ms: int | None = None
    closed: bool = False

    @property
    def arm(self) -> str:
        interval = self.transaction_interval_ms
        return self.guarantee if interval is None else f"{self.guarantee}@{interval}"

    def start(self, _training: object) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@dataclass
class Calls:
    stack: FakeStack = field(default_factory=FakeStack)
    runs: list[tuple[str, str, float]] = field(default_factory=list)  # (run, arm, seconds)


def _paced(latency_ms: float) -> Any:
    return type(
        "Paced",
        (),
        {
            "latencies_ms": [(float(i), latency_ms) for i in range(100)],
            "split_ms": [(latency_ms - 1, 1.0) for _ in range(100)],
            "predictions_missing": 0,
            "worker_stage_seconds": {"checkpoint": 0.5},
            "worker_scored": 100,
            "worker_batches": 10,
            "worker_transactions": 0,
        },
    )()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    recorded = Calls()

    def throughput(stack: FakeStack, _format: str, _events: int, _seed: int, phase: str) -> Any:
        recorded.runs.append((phase, stack.arm, 0.0))
        # exactly-once drains at 900 events/s, at a 10-ms interval at 700; a warm-up at a tenth
        rate = {"at_least_once": 1000.0, "exactly_once": 900.0}.get(stack.arm, 700.0)
        rate /= 10 if phase == "throughput-warmup" else 1
        return type("Run", (), {"events_per_s": rate})()

    @contextlib.contextmanager
    def deployment(stack: FakeStack, phase: str, _seed: int) -> Iterator[str]:
        yield f"{phase} {stack.arm}"

    def latency(deployed: str, options: LatencyOptions, _seed: int, _say: object) -> Any:
        phase, guarantee = deployed.split()
        recorded.runs.append((phase, guarantee, options.seconds))
        return _paced(900.0 if options.seconds == 15.0 else 10.0)

    monkeypatch.setattr(guarantees, "BenchStack", lambda *_a: recorded.stack)
    monkeypatch.setattr(guarantees, "measure_throughput", throughput)
    monkeypatch.setattr(guarantees, "paced_deployment", deployment)
    monkeypatch.setattr(guarantees, "measure_paced", latency)
    return recorded


def test_warm_ups_run_first_and_stay_out_of_the_figures(calls: Calls) -> None:
    options = GuaranteeBenchOptions(
        rounds=2, latency=LatencyOptions(seconds=20.0), warmup_seconds=15.0
    )
    report = run_guarantee_bench(options, Console(record=True))
    assert calls.runs == [
        ("throughput-warmup", "at_least_once", 0.0),
        ("throughput-warmup", "exactly_once", 0.0),
        ("throughput-round1", "at_least_once", 0.0),
        ("latency-round1", "at_least_once", 15.0),
        ("latency-round1", "at_least_once", 20.0),
        ("throughput-round1", "exactly_once", 0.0),
        ("latency-round1", "exactly_once", 15.0),
        ("latency-round1", "exactly_once", 20.0),
        ("throughput-round2", "at_least_once", 0.0),
        ("latency-round2", "at_least_once", 15.0),
        ("latency-round2", "at_least_once", 20.0),
        ("throughput-round2", "exactly_once", 0.0),
        ("latency-round2", "exactly_once", 15.0),
        ("latency-round2", "exactly_once", 20.0),
    ]
    assert report["warmup_events_per_s"] == {"at_least_once": 100, "exactly_once": 90}
    assert report["events_per_s"] == {"at_least_once": [1000, 1000], "exactly_once": [900, 900]}
    assert report["warmup_latency_ms"]["p99"] == 900.0
    assert report["latency_ms"]["at_least_once"]["p99"] == 10.0
    assert report["latency_ms"]["exactly_once"]["max"] == 10.0
    assert calls.stack.closed


def test_more_intervals_add_exactly_once_arms_to_every_round(calls: Calls) -> None:
    options = GuaranteeBenchOptions(
        rounds=1,
        latency=LatencyOptions(seconds=20.0),
        warmup_seconds=15.0,
        intervals_ms=(10, 50, 10),  # 50 is the default's: no arm of its own; 10 once
        warmup_events=0,  # no unmeasured drain
    )
    report = run_guarantee_bench(options, Console(record=True))
    assert report["warmup_events_per_s"] == {}
    assert [arm for run, arm, _ in calls.runs if run.startswith("throughput")] == [
        "at_least_once",
        "exactly_once",
        "exactly_once@10",
    ]
    assert list(report["latency_ms"]) == ["at_least_once", "exactly_once", "exactly_once_10ms"]
    assert report["ratio"] == 0.9
    assert report["ratio_by_arm"] == {"exactly_once": 0.9, "exactly_once_10ms": 0.7}
    assert report["targets"]["ratio"]["met"]
    assert calls.stack.transaction_interval_ms == 10  # the last arm's, set on the stack


def test_a_phase_at_another_interval_is_named_and_configured_so(tmp_path: Path) -> None:
    stack = BenchStack(tmp_path / "bench", 4, lambda _line: None)
    stack.stack.settings = lambda prefix, partitions, **overrides: (prefix, overrides)  # type: ignore[method-assign,assignment]
    stack.guarantee, stack.transaction_interval_ms = "exactly_once", 10
    prefix, overrides = stack.phase_settings("latency-round1")  # type: ignore[misc]
    assert prefix.endswith("-latency-round1-exactly-once-10ms")
    assert overrides["transaction_interval_ms"] == 10
    assert overrides["worker_id"] == "bench-latency-round1-exactly-once-10ms"
