"""``stream-app bench latency``: a warm-up run first, reported apart, then the measured runs, all
on one deployment (worker, sink, topics), each with its figures, CPU by thread and CPU shares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from rich.console import Console

from stream_app.devtools.bench import latency_bench
from stream_app.devtools.bench.latency import LatencyResult, _since
from stream_app.devtools.bench.latency_bench import LatencyBenchOptions, latency_command
from stream_app.devtools.bench.options import LatencyOptions


@dataclass
class FakeStack:
    """Records what the command asked of the stack; ``close`` must always be called."""

    started: bool = False
    closed: bool = False
    broker_pid: int = 1
    say: Any = print

    def start(self, _training: object) -> None:
        self.started = True

    def close(self) -> None:
        self.closed = True


@dataclass
class Calls:
    stack: FakeStack = field(default_factory=FakeStack)
    runs: list[tuple[float, str]] = field(default_factory=list)  # (seconds, deployment)
    deployments: list[str] = field(default_factory=list)  # deployed, then "stopped" appended


def _result(latency_ms: float) -> LatencyResult:
    created = [1_000.0 + i for i in range(200)]
    return LatencyResult(
        offered_rate=5_000.0,
        started_ms=1_000.0,
        latencies_ms=[(c, latency_ms) for c in created],
        split_ms=[(latency_ms - 2, 2.0) for _ in created],
        visibility_ms=[(c, 500.0) for c in created[:4]],
        alert_latencies_ms=[(created[0], latency_ms + 1)],
        poll_interval_ms=100.0,
        peak_rss_mb={"worker": 300.0, "sink": 400.0},
        cpu_seconds={"worker": 10.0, "sink": 8.0},
        paced_cpu_seconds={"worker": 0.02, "sink": 0.01},
        paced_thread_cpu_seconds={"worker": {"python": 0.015, "rdk:broker1": 0.005}, "sink": {}},
        sent=200,
        worker_scored=200,
        worker_batches=10,
        worker_stage_seconds={"predict": 0.001},
        worker_transactions=0,
        worker_transaction_seconds={},
        worker_transaction_laps_over_50ms={},
        worker_state_records=0,
        predictions_missing=0,
        visibility_timed_out=0,
    )


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    recorded = Calls()

    @contextlib.contextmanager
    def deployment(_stack: FakeStack, phase: str, _seed: int) -> Iterator[str]:
        recorded.deployments.append(phase)
        try:
            yield phase
        finally:
            recorded.deployments.append("stopped")

    def measure(deployed: str, options: LatencyOptions, _seed: int, _say: object) -> Any:
        recorded.runs.append((options.seconds, deployed))
        if len(recorded.runs) == 3:
            raise RuntimeError("the worker died")
        return _result(latency_ms=100.0 if len(recorded.runs) == 1 else 10.0)

    @contextlib.contextmanager
    def usage(_pid: int, shares: dict[str, float], rss: dict[str, float]) -> Iterator[None]:
        yield
        shares["broker_cpu_share"] = 0.2
        rss["peak"] = 450.0

    monkeypatch.setattr(latency_bench, "BenchStack", lambda *_a: recorded.stack)
    monkeypatch.setattr(latency_bench, "paced_deployment", deployment)
    monkeypatch.setattr(latency_bench, "measure_paced", measure)
    monkeypatch.setattr(latency_bench, "phase_usage", usage)
    return recorded


def test_warm_up_first_then_the_measured_runs(calls: Calls) -> None:
    options = LatencyBenchOptions(latency=LatencyOptions(seconds=30.0), warmup_seconds=20.0)
    console = Console(record=True, width=200)
    report = latency_command(options, None, console)
    assert calls.runs == [(20.0, "latency"), (30.0, "latency")]  # on one deployment
    assert calls.deployments == ["latency", "stopped"]
    assert calls.stack.started and calls.stack.closed
    warmup, run = report["runs"]
    assert (warmup["run"], warmup["latency_ms"]["p99"]) == ("warmup", 100.0)
    assert (run["run"], run["latency_ms"]["p99"], run["alert_latency_ms"]["p99"]) == (
        "run1",
        10.0,
        11.0,
    )
    assert run["phase"]["paced_thread_cpu_us_per_event"]["worker"] == {
        "python": 75.0,
        "rdk:broker1": 25.0,
    }
    assert run["contention"] == {"broker_cpu_share": 0.2}
    assert run["broker_rss_mb"] == {"peak": 450.0}
    printed = console.export_text()
    assert "[run1] latency p50 10.0 p99 10.0 ms" in printed
    assert "5,000 events/s for 30 s" in printed


def test_a_failed_run_stops_everything_started(calls: Calls) -> None:
    with pytest.raises(RuntimeError, match="the worker died"):
        latency_command(LatencyBenchOptions(runs=3), None, Console(record=True))
    assert len(calls.runs) == 3 and calls.stack.closed
    assert calls.deployments == ["latency", "stopped"]


def test_thread_cpu_since_subtracts_per_thread_name() -> None:
    before = {"worker": {"python": 1.0, "rdk:main": 0.5}}
    now = {"worker": {"python": 3.5, "rdk:main": 0.5, "rdk:broker1": 0.25}}
    assert _since(now, before) == {"worker": {"python": 2.5, "rdk:main": 0.0, "rdk:broker1": 0.25}}
