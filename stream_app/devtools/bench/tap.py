"""``stream-app bench online-tap``: what the online learner's feature tap costs the worker.

One run, one broker, one model: the same Avro backlog drained end to end (worker and sink, as
``stream-app bench`` measures throughput) with the tap off and on, alternately, ``rounds`` times
each, so that the machine's noise falls on both sides. Reported: events/s of each drain, the
ratio of the medians (on ÷ off), and the worker's ``observe`` stage in µs per event.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from models.train import TrainingConfig
from stream_app.devtools.bench.render import write_json
from stream_app.devtools.bench.stack import BenchStack
from stream_app.devtools.bench.throughput import ThroughputResult, measure_throughput


@dataclass(frozen=True)
class TapBenchOptions:
    events: int = 100_000
    rounds: int = 2
    partitions: int = 4
    state_dir: Path = Path(".stream_app/bench-tap")  # wiped at start
    training: TrainingConfig = field(default_factory=TrainingConfig)
    seed: int = 7


def _summary(runs: list[ThroughputResult]) -> dict[str, Any]:
    return {
        "events_per_s": [round(r.events_per_s, 1) for r in runs],
        "median_events_per_s": round(statistics.median(r.events_per_s for r in runs), 1),
        "observe_us_per_event": [
            round(1e6 * r.worker_stage_seconds.get("observe", 0.0) / r.events, 2) for r in runs
        ],
    }


def run_tap_bench(options: TapBenchOptions, console: Console) -> dict[str, Any]:
    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False)

    started = time.perf_counter()
    stack = BenchStack(options.state_dir, options.partitions, say)
    runs: dict[bool, list[ThroughputResult]] = {False: [], True: []}
    try:
        stack.start(options.training)
        for number in range(options.rounds):
            for tap in (False, True):
                phase = f"tap-{'on' if tap else 'off'}-{number}"
                runs[tap].append(
                    measure_throughput(
                        stack, "avro", options.events, options.seed, phase, online_features=tap
                    )
                )
    finally:
        stack.close()
    off, on = _summary(runs[False]), _summary(runs[True])
    return {
        "options": {k: str(v) for k, v in asdict(options).items()},
        "tap_off": off,
        "tap_on": on,
        "ratio_on_to_off": round(on["median_events_per_s"] / off["median_events_per_s"], 3),
        "seconds": round(time.perf_counter() - started, 1),
    }


def tap_command(options: TapBenchOptions, json_path: Path | None, console: Console) -> None:
    """Run, print the figures, write the JSON."""
    report = run_tap_bench(options, console)
    for side in ("tap_off", "tap_on"):
        figures = report[side]
        console.print(
            f"{side.replace('_', ' ')}: events/s {figures['events_per_s']} (median "
            f"{figures['median_events_per_s']:,.0f}); observe µs/event "
            f"{figures['observe_us_per_event']}",
            highlight=False,
        )
    console.print(f"throughput with the tap ÷ without: {report['ratio_on_to_off']:.3f}")
    write_json(report, json_path, console)
