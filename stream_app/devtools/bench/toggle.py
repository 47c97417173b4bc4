"""What one boolean setting costs the worker: ``stream-app bench online-tap`` (the online
learner's feature tap, ``online_features``) and ``stream-app bench monitoring`` (the drift
monitors, ``drift_monitoring``).

One run, one broker, one model: the same Avro backlog drained end to end (worker and sink, as
``stream-app bench`` measures throughput) with the setting off and on, alternately, ``rounds``
times each, so that the machine's noise falls on both sides. Reported: events/s of each drain,
the ratio of the medians (on ÷ off), the worker's CPU-seconds per million events (which the
sink cannot hide when it is the slower of the two), its ``observe`` stage in µs per event and
the median of every stage.
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
class ToggleBenchOptions:
    setting: str  # a boolean field of Settings
    #: other settings of both sides
    fixed: dict[str, Any] = field(default_factory=dict)
    events: int = 100_000
    rounds: int = 2
    partitions: int = 4
    state_dir: Path = Path(".stream_app/bench-toggle")  # wiped at start
    training: TrainingConfig = field(default_factory=TrainingConfig)
    seed: int = 7


def _summary(runs: list[ThroughputResult]) -> dict[str, Any]:
    cpu = [1e6 * r.cpu_seconds_draining["worker"] / r.events for r in runs]
    return {
        "events_per_s": [round(r.events_per_s, 1) for r in runs],
        "median_events_per_s": round(statistics.median(r.events_per_s for r in runs), 1),
        "worker_cpu_s_per_million": [round(c, 2) for c in cpu],
        "median_worker_cpu_s_per_million": round(statistics.median(cpu), 2),
        "observe_us_per_event": [
            round(1e6 * r.worker_stage_seconds.get("observe", 0.0) / r.events, 2) for r in runs
        ],
        # every stage, median over the drains: where a setting's cost lands besides ``observe``
        "worker_stage_us_per_event": {
            stage: round(
                statistics.median(1e6 * r.worker_stage_seconds[stage] / r.events for r in runs), 2
            )
            for stage in runs[0].worker_stage_seconds
        },
    }


def run_toggle_bench(options: ToggleBenchOptions, console: Console) -> dict[str, Any]:
    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False)

    started = time.perf_counter()
    stack = BenchStack(options.state_dir, options.partitions, say)
    runs: dict[bool, list[ThroughputResult]] = {False: [], True: []}
    try:
        stack.start(options.training)
        for number in range(options.rounds):
            for enabled in (False, True):
                side = "on" if enabled else "off"
                phase = f"{options.setting.replace('_', '-')}-{side}-{number}"
                setting = {**options.fixed, options.setting: enabled}
                runs[enabled].append(
                    measure_throughput(
                        stack, "avro", options.events, options.seed, phase, **setting
                    )
                )
    finally:
        stack.close()
    off, on = _summary(runs[False]), _summary(runs[True])
    return {
        "options": {k: str(v) for k, v in asdict(options).items()},
        "off": off,
        "on": on,
        "ratio_on_to_off": round(on["median_events_per_s"] / off["median_events_per_s"], 3),
        "worker_cpu_ratio_on_to_off": round(
            on["median_worker_cpu_s_per_million"] / off["median_worker_cpu_s_per_million"], 3
        ),
        "seconds": round(time.perf_counter() - started, 1),
    }


def toggle_command(options: ToggleBenchOptions, json_path: Path | None, console: Console) -> None:
    """Run, print the figures, write the JSON."""
    report = run_toggle_bench(options, console)
    for side in ("off", "on"):
        figures = report[side]
        console.print(
            f"{options.setting} {side}: events/s {figures['events_per_s']} (median "
            f"{figures['median_events_per_s']:,.0f}); worker CPU-s per million events "
            f"{figures['worker_cpu_s_per_million']}; observe µs/event "
            f"{figures['observe_us_per_event']}",
            highlight=False,
        )
    console.print(
        f"with {options.setting} ÷ without: throughput {report['ratio_on_to_off']:.3f}, "
        f"worker CPU per event {report['worker_cpu_ratio_on_to_off']:.3f}",
        highlight=False,
    )
    write_json(report, json_path, console)
