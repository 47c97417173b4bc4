"""``stream-app bench latency``: the paced latency phase alone, after a paced warm-up run.

A paced run on a broker, a worker and a sink just started measures their warm-up (p99 199-579 ms
in the broker's first 20 s, 100-200 ms in the first 20 s of a fresh worker and sink,
docs/benchmarks.md): a shorter paced run on the same deployment comes first and is reported
apart, as in the full benchmark; then ``runs`` measured runs on it, one after the other, each
with its CPU shares (the broker's among them), so that one change can be compared against
another in a few minutes instead of the full benchmark's ~4-6.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from models.train import TrainingConfig
from stream_app.devtools.bench.contention import phase_usage
from stream_app.devtools.bench.latency import measure_paced, paced_deployment
from stream_app.devtools.bench.options import LatencyOptions
from stream_app.devtools.bench.render import write_json
from stream_app.devtools.bench.report import latency_headlines, latency_phase, machine
from stream_app.devtools.bench.stack import BenchStack


@dataclass(frozen=True)
class LatencyBenchOptions:
    latency: LatencyOptions = field(default_factory=lambda: LatencyOptions(seconds=30.0))
    warmup_seconds: float = 20.0  # the paced run before the measured ones, reported apart
    runs: int = 1
    partitions: int = 4
    state_dir: Path = Path(".stream_app/bench-latency")  # wiped at start
    seed: int = 7
    training: TrainingConfig = field(default_factory=TrainingConfig)  # the full bench's model


def run_latency_bench(options: LatencyBenchOptions, console: Console) -> dict[str, Any]:
    """The warm-up run, then the measured runs; whatever happens, everything started is
    stopped."""

    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False)

    stack = BenchStack(options.state_dir, options.partitions, say)
    runs: list[dict[str, Any]] = []
    try:
        stack.start(options.training)
        warmup = replace(options.latency, seconds=options.warmup_seconds)
        with paced_deployment(stack, "latency", options.seed) as deployment:
            for index in range(options.runs + 1):
                name, paced_options = (
                    ("warmup", warmup) if index == 0 else (f"run{index}", options.latency)
                )
                shares: dict[str, float] = {}
                broker_rss: dict[str, float] = {}
                with phase_usage(stack.broker_pid, shares, broker_rss):
                    paced = measure_paced(deployment, paced_options, options.seed + index, say)
                figures = {
                    "run": name,
                    **latency_headlines(paced),
                    "phase": latency_phase(paced, paced_options),
                    "contention": shares,
                    "broker_rss_mb": broker_rss,
                }
                say(f"[{name}] {_summary(figures)}")
                runs.append(figures)
    finally:
        stack.close()
    return {
        "command": "stream-app bench latency",
        "machine": machine(),
        "partitions": options.partitions,
        "rate": options.latency.rate,
        "seconds": options.latency.seconds,
        "warmup_seconds": options.warmup_seconds,
        "runs": runs,
    }


def _summary(figures: dict[str, Any]) -> str:
    latency, alerts = figures["latency_ms"], figures["alert_latency_ms"]
    cpu = figures["phase"]["paced_cpu_us_per_event"]
    return (
        f"latency p50 {latency.get('p50')} p99 {latency.get('p99')} ms, "
        f"alerts p99 {alerts.get('p99')} ms, visibility p99 {figures['visibility_ms'].get('p99')} "
        f"ms; worker {cpu.get('worker')} sink {cpu.get('sink')} µs CPU per event; broker "
        f"{figures['contention'].get('broker_cpu_share', 0):.0%} of the CPUs"
    )


def latency_table(report: dict[str, Any]) -> Table:
    table = Table(
        "run",
        "decision p50 · p95 · p99 · max ms",
        "to worker output p99 · after it p99",
        "alert p99",
        "visibility p50 · p99",
        "mean batch",
        "worker · sink CPU µs/event",
        "broker · other CPU share",
        title=f"stream-app bench latency: {report['rate']:,.0f} events/s for "
        f"{report['seconds']:g} s on {report['partitions']} partitions (targets: decision p99 "
        "≤ 25 ms, alert p99 ≤ 35 ms, visibility p99 ≤ 1,000 ms)",
        title_justify="left",
    )
    for run in report["runs"]:
        latency, phase = run["latency_ms"], run["phase"]
        split = phase["latency_split_ms"]
        cpu = phase["paced_cpu_us_per_event"]
        shares = run["contention"]
        table.add_row(
            run["run"],
            " · ".join(str(latency.get(p)) for p in ("p50", "p95", "p99", "max")),
            f"{split['to_worker_output'].get('p99')} · "
            f"{split['worker_output_to_consumer'].get('p99')}",
            str(run["alert_latency_ms"].get("p99")),
            f"{run['visibility_ms'].get('p50')} · {run['visibility_ms'].get('p99')}",
            str(phase["worker_mean_batch_events"]),
            f"{cpu.get('worker')} · {cpu.get('sink')}",
            f"{shares.get('broker_cpu_share', 0):.0%} · {shares.get('other_cpu_share', 0):.0%}",
        )
    return table


def latency_command(
    options: LatencyBenchOptions, json_path: Path | None, console: Console
) -> dict[str, Any]:
    """``stream-app bench latency``: run, write the JSON document, print the table."""
    report = run_latency_bench(options, console)
    write_json(report, json_path, console)
    console.print(latency_table(report))
    return report
