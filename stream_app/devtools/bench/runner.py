"""Run every phase in order on processes started here, stop them all, report."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from stream_app.devtools.bench.bare import measure_bare
from stream_app.devtools.bench.contention import phase_usage
from stream_app.devtools.bench.latency import measure_paced, paced_deployment
from stream_app.devtools.bench.options import BenchOptions
from stream_app.devtools.bench.render import render, write_json
from stream_app.devtools.bench.report import build_report, latency_headlines
from stream_app.devtools.bench.scale import measure_scale
from stream_app.devtools.bench.soak import measure_soak
from stream_app.devtools.bench.stack import BenchStack
from stream_app.devtools.bench.swap import measure_swap
from stream_app.devtools.bench.throughput import measure_throughput


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the benchmark like Ctrl-C: everything it started is stopped first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_bench(options: BenchOptions, console: Console) -> dict[str, Any]:
    """Every measurement; whatever happens (Ctrl-C included), everything started is stopped."""

    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False)

    stack = BenchStack(options.state_dir, options.partitions, say)
    contention: dict[str, dict[str, float]] = {}
    broker_rss: dict[str, dict[str, float]] = {}

    @contextmanager
    def phase(name: str) -> Iterator[None]:
        """The phase's CPU shares, and the broker's peak and final RSS over it."""
        with phase_usage(
            stack.broker_pid, contention.setdefault(name, {}), broker_rss.setdefault(name, {})
        ):
            yield

    soak = None
    with _sigterm_as_interrupt():
        try:
            model = stack.start(options.training)
            with phase("throughput_json"):
                json_run = measure_throughput(stack, "json", options.events, options.seed)
            with phase("throughput_avro"):
                avro_run = measure_throughput(stack, "avro", options.events, options.seed)
            with phase("bare"):
                bare = measure_bare(stack, options.events, options.seed, options.bare_dsn)
            with phase("scale"):
                scale = measure_scale(stack, options.events, options.seed, options.scale_pairs)
            with paced_deployment(stack, "latency", options.seed + 1) as deployment:
                with phase("latency_warmup"):
                    warmup = replace(options.latency, seconds=options.latency_warmup_seconds)
                    latency_warmup = measure_paced(deployment, warmup, options.seed + 3, say)
                with phase("latency"):
                    latency = measure_paced(deployment, options.latency, options.seed + 1, say)
            with phase("swap"):
                swap = measure_swap(stack, options.training, options.latency.rate, options.seed + 2)
            if options.soak_events:
                with phase("soak"):
                    soak = measure_soak(stack, options.soak_events, options.seed)
        except KeyboardInterrupt:
            say("interrupted: stopping everything the benchmark started")
            raise
        finally:
            stack.close()
    report = build_report(options, model, json_run, avro_run, bare, latency, swap, scale, soak)
    report["latency_warmup"] = latency_headlines(latency_warmup)
    report["contention"] = contention
    report["broker_rss_mb"] = broker_rss
    return report


def bench_command(
    options: BenchOptions, json_path: Path | None, profile: bool, console: Console
) -> dict[str, Any]:
    """``stream-app bench``: run, print the tables, write the JSON document."""
    report = run_bench(options, console)
    write_json(report, json_path, console)  # first: the figures stay if rendering fails
    render(report, console, profile)
    return report
