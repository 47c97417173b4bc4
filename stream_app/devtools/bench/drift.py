"""``stream-app bench drift``: detection delay, missed drifts and false alarms of the monitors.

Every scenario is run on seeds 0 to ``seeds - 1`` (the calibration uses others). A detector's
first alarm at or after a drift point and before the next one (or the stream's end) detects it,
its delay counted in events from the point; a point with no such alarm is missed. Alarms before
the first drift point, and every alarm on the stationary control, are false alarms. The dummy
detector (an alarm every ``spacing`` events, half a spacing out of step with the drift points)
never misses a drift, with a delay of half the spacing, the mean delay of a periodic alarm at a
random phase: the floor any detector must beat.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from monitors.base import Detector, alarm_positions
from monitors.errors import AdwinMonitor, HddmMonitor
from monitors.features import PsiMonitor
from monitors.reference import feature_monitors, score_monitor
from monitors.scores import ScoreMonitor
from stream_app.devtools.bench.drift_calibration import REFERENCE_SIZE
from stream_app.devtools.bench.drift_generated import (
    WATCHED_FEATURE,
    Champion,
    FloatArray,
    GeneratedStream,
    generated_stream,
    stationary_day,
    train_champion,
)
from stream_app.devtools.bench.drift_streams import (
    DriftPlan,
    covariate_stream,
    error_stream,
    feature_reference,
    score_reference,
    stationary_covariates,
    stationary_errors,
)
from stream_app.devtools.bench.render import write_json

#: River's own default for ADWIN, the yardstick of the error-stream delay target
RIVER_ADWIN_DELTA = 0.002
#: the reference sample of the feature monitor is drawn with the stream's seed plus this
REFERENCE_SEED_OFFSET = 500


class Periodic:
    """The dummy detector: an alarm every ``every`` events, the first after ``every // 2``."""

    def __init__(self, every: int) -> None:
        self.every = every
        self._seen = every // 2
        self.drift_detected = False

    def update(self, value: float) -> None:
        self._seen += 1
        self.drift_detected = self._seen % self.every == 0


@dataclass(frozen=True)
class DriftBenchOptions:
    seeds: int = 10
    #: drift points per concept-drift stream, ``spacing`` events apart
    drifts: int = 3
    spacing: int = 5_000
    #: events over which a gradual drift's new concept takes over
    gradual_width: int = 1_000
    #: the covariate shift, in standard deviations of the feature
    shift_sd: float = 0.25
    #: events of each stationary control stream
    control_events: int = 1_000_000
    #: events the online classifier learns from before the detectors see its errors
    warmup: int = 2_000
    #: events of each generated stream (its drift point halfway) and of the champion's training
    generated_events: int = 20_000
    champion_events: int = 50_000
    #: events of each stream of the generator's stationary control (a day and a night of event
    #: time: 120,000 at the training's time scale), read by each input partition's monitors
    generated_control_events: int = 120_000
    #: run only the scenarios whose label (``Scenario.label``) contains one of these (none = all)
    only: tuple[str, ...] = ()

    @classmethod
    def quick(cls) -> DriftBenchOptions:
        """Some 20 seconds' worth, for the test suite: the same scenarios, smaller."""
        return cls(
            seeds=2,
            drifts=1,
            spacing=4_000,
            gradual_width=500,
            control_events=50_000,
            warmup=1_000,
            generated_events=10_000,
            champion_events=20_000,
            generated_control_events=20_000,
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    signal: str  # "error", "score" or "feature"
    #: the stream of a seed and its drift points
    stream: Callable[[int], tuple[Sequence[float], list[int]]]
    #: the detectors of a seed, fresh (and of a part's key: see ``parts``)
    detectors: Callable[[int, str], dict[str, Detector]]
    #: a seed's independent streams, each read by fresh detectors (a monitor per input
    #: partition and feature): (key, values) each, with no drift point; none: ``stream``
    parts: Callable[[int], list[tuple[str, Sequence[float]]]] | None = None

    @property
    def label(self) -> str:
        """The scenario and its signal, as the progress lines print them."""
        return f"{self.name} ({self.signal})"

    def streams(self, seed: int) -> list[tuple[str, Sequence[float], list[int]]]:
        """The seed's streams: a key (which detectors read it), the values, the drift points."""
        if self.parts is None:
            values, points = self.stream(seed)
            return [("", values, points)]
        return [(key, values, []) for key, values in self.parts(seed)]

    def chosen(self, only: Sequence[str]) -> bool:
        """Whether a run restricted to ``only`` (none: every scenario) runs this one."""
        return not only or any(text in self.label for text in only)


def _detectors(signal: str, spacing: int, seed: int, key: str = "") -> dict[str, Detector]:
    detectors: dict[str, Detector]
    if signal == "error":
        detectors = {
            "adwin": AdwinMonitor(),
            "hddm_a": HddmMonitor(),
            "adwin (River default)": AdwinMonitor(delta=RIVER_ADWIN_DELTA),
        }
    elif signal == "score":
        detectors = {"page_hinkley": ScoreMonitor(*score_reference())}
    else:
        reference = feature_reference(REFERENCE_SIZE, seed + REFERENCE_SEED_OFFSET)
        detectors = {"psi": PsiMonitor.from_reference(reference)}
    detectors["dummy"] = Periodic(spacing)
    return detectors


def _concept(name: str, plan: DriftPlan, seed: int) -> tuple[Sequence[float], list[int]]:
    return error_stream(name, plan, seed), plan.points


def _covariate(signal: int, options: DriftBenchOptions, seed: int) -> tuple[list[float], list[int]]:
    values = covariate_stream(2 * options.spacing, options.spacing, options.shift_sd, seed)
    return values[signal], [options.spacing]


def _stationary_covariate(signal: int, events: int, seed: int) -> tuple[list[float], list[int]]:
    return stationary_covariates(events, seed)[signal], []


def _generated(
    stream: Callable[[int], GeneratedStream], signal: str, seed: int
) -> tuple[Sequence[float], list[int]]:
    generated = stream(seed)
    values: dict[str, Sequence[float]] = {
        "score": generated.scores,
        "feature": generated.feature,
        "error": generated.errors,
    }
    return values[signal], generated.points


def _champion_detectors(
    champion: Champion, signal: str, spacing: int, seed: int, key: str = ""
) -> dict[str, Detector]:
    """The monitors of ``champion``'s reference; a feature's is the one of ``key`` (a feature
    name, then the partition: ``amount 2``), or else of the watched feature."""
    if signal == "error":
        return _detectors(signal, spacing, seed)
    reference = champion.reference
    if signal == "feature":
        feature = key.split()[0] if key else WATCHED_FEATURE
        return {"psi": feature_monitors(reference)[feature], "dummy": Periodic(spacing)}
    clipped = score_monitor(reference)
    unclipped = ScoreMonitor(clipped.reference_mean, clipped.reference_std, clip=math.inf)
    return {
        "page_hinkley": clipped,
        "page_hinkley (no clip)": unclipped,
        "dummy": Periodic(spacing),
    }


#: the generator's schedules and the signals each is a scenario for: a covariate shift for the
#: label-free monitors, a concept drift (the champion's errors rise) for the error stream's
GENERATED = (
    ("covariate-shift", ("score", "feature")),
    ("pattern-moves", ("error",)),
    ("new-pattern", ("error",)),
)
#: the generator's stationary control: no schedule, at the training's time scale (600 s of event
#: time per 1,000 events) so that a stream runs through the hours of a day and a night
CONTROL_TIME_SCALE = 600.0


def _stationary_parts(
    day: Callable[[int], dict[str, list[FloatArray]]], signal: str, seed: int
) -> list[tuple[str, Sequence[float]]]:
    """The stationary day's streams of ``signal``: the score's per partition, or every
    monitored feature's per partition (keyed ``feature partition``)."""
    streams = day(seed)
    names = ["score"] if signal == "score" else [name for name in streams if name != "score"]
    return [
        (f"{name} {partition}", values.tolist())
        for name in names
        for partition, values in enumerate(streams[name])
    ]


def _no_stream(seed: int) -> tuple[Sequence[float], list[int]]:
    raise NotImplementedError("a scenario of parts")


def scenarios(options: DriftBenchOptions, champion: Champion) -> list[Scenario]:
    """Concept drift on the error stream, covariate shift on score and feature, the generator's
    schedules scored by ``champion``, controls."""
    result = []

    def synthetic(name: str, signal: str, stream: Callable[[int], Any]) -> Scenario:
        return Scenario(name, signal, stream, partial(_detectors, signal, options.spacing))

    for name in ("agrawal", "sea"):
        for kind, width in (("abrupt", 1), ("gradual", options.gradual_width)):
            plan = DriftPlan(options.drifts, options.spacing, width, options.warmup)
            result.append(synthetic(f"{name} {kind}", "error", partial(_concept, name, plan)))
    result += [
        synthetic("covariate shift", "feature", partial(_covariate, 0, options)),
        synthetic("covariate shift", "score", partial(_covariate, 1, options)),
    ]
    for schedule, signals in GENERATED:
        make = partial(generated_stream, champion, schedule, options.generated_events)
        stream = cache(make)  # one stream per seed whatever the signals read from it
        result += [
            Scenario(
                f"generator {schedule}",
                signal,
                partial(_generated, stream, signal),
                partial(_champion_detectors, champion, signal, options.spacing),
            )
            for signal in signals
        ]
    day = cache(
        partial(
            stationary_day,
            champion,
            options.generated_control_events,
            time_scale=CONTROL_TIME_SCALE,
        )
    )
    result += [
        Scenario(
            "generator stationary",
            signal,
            _no_stream,
            partial(_champion_detectors, champion, signal, options.spacing),
            partial(_stationary_parts, day, signal),
        )
        for signal in ("score", "feature")
    ]
    result += [
        synthetic(
            "stationary",
            "error",
            lambda seed: (stationary_errors(options.control_events, seed), []),
        ),
        synthetic(
            "stationary", "feature", partial(_stationary_covariate, 0, options.control_events)
        ),
        synthetic("stationary", "score", partial(_stationary_covariate, 1, options.control_events)),
    ]
    return result


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class Tally:
    """One detector's outcome on one scenario, summed over seeds."""

    drifts: int = 0
    missed: int = 0
    delays: list[int] = field(default_factory=list)
    #: the delay of every drift, a missed one counted as its whole segment
    censored: list[int] = field(default_factory=list)
    false_alarms: int = 0
    #: events where any alarm is false (before the first drift point)
    clean_events: int = 0
    events: int = 0

    def add(self, alarms: list[int], points: list[int], events: int) -> None:
        for point, end in itertools.pairwise([*points, events]):
            first = next((a for a in alarms if point <= a < end), None)
            self.drifts += 1
            if first is None:
                self.missed += 1
            else:
                self.delays.append(first - point)
            self.censored.append(end - point if first is None else first - point)
        clean = points[0] if points else events
        self.false_alarms += sum(a < clean for a in alarms)
        self.clean_events += clean
        self.events += events

    def row(self) -> dict[str, Any]:
        delays = self.delays
        return {
            "drifts": self.drifts,
            "missed": self.missed,
            "mean_delay": _mean(delays),
            "max_delay": max(delays) if delays else None,
            "mean_delay_censored": _mean(self.censored),
            "false_alarms": self.false_alarms,
            "false_alarms_per_100k": 1e5 * self.false_alarms / self.clean_events,
            "events": self.events,
        }


def run_drift_bench(options: DriftBenchOptions, say: Callable[[str], None]) -> dict[str, Any]:
    """Every scenario and detector on every seed; rows and the targets' verdicts."""
    started = time.perf_counter()
    champion = train_champion(options.champion_events)
    say(
        f"champion trained on {options.champion_events:,} events: "
        f"{time.perf_counter() - started:.0f} s"
    )
    rows = []
    for scenario in scenarios(options, champion):
        if not scenario.chosen(options.only):
            continue
        tallies: dict[str, Tally] = {}
        for seed in range(options.seeds):
            for key, values, points in scenario.streams(seed):
                for name, detector in scenario.detectors(seed, key).items():
                    tallies.setdefault(name, Tally()).add(
                        alarm_positions(detector, values), points, len(values)
                    )
        say(f"{scenario.label}: {time.perf_counter() - started:.0f} s")
        rows += [
            {"scenario": scenario.name, "signal": scenario.signal, "detector": name} | t.row()
            for name, t in tallies.items()
        ]
    return {
        "options": asdict(options),
        "rows": rows,
        "targets": targets(rows, options),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _find(rows: list[dict[str, Any]], scenario: str, signal: str, detector: str) -> dict[str, Any]:
    return next(
        r
        for r in rows
        if (r["scenario"], r["signal"], r["detector"]) == (scenario, signal, detector)
    )


def _label(row: dict[str, Any]) -> str:
    return f"{row['scenario']} / {row['signal']} / {row['detector']}"


def targets(rows: list[dict[str, Any]], options: DriftBenchOptions) -> dict[str, dict[str, Any]]:
    """The issue's targets for the calibrated detectors: met or not, and the rows that fail.

    Delays are compared censored (a missed drift counts as its whole segment), so that a
    detector that misses the hard drifts does not look faster than one that finds them.
    """
    calibrated = {"error": ("adwin", "hddm_a"), "score": ("page_hinkley",), "feature": ("psi",)}
    ours = [r for r in rows if r["detector"] in calibrated[r["signal"]]]
    drifting = [r for r in ours if r["drifts"]]

    def slower_than_river(row: dict[str, Any]) -> bool:
        river = _find(rows, row["scenario"], "error", "adwin (River default)")
        return bool(row["mean_delay_censored"] > 1.5 * river["mean_delay_censored"])

    def floor_or_below(row: dict[str, Any]) -> bool:
        dummy = _find(rows, row["scenario"], row["signal"], "dummy")
        if row["mean_delay_censored"] >= dummy["mean_delay_censored"]:
            return True
        try:  # a run of some scenarios (``only``) may have no control
            control = _find(rows, "stationary", row["signal"], row["detector"])
            dummy_control = _find(rows, "stationary", row["signal"], "dummy")
        except StopIteration:
            return False
        return bool(control["false_alarms_per_100k"] >= dummy_control["false_alarms_per_100k"])

    covariate = [r for r in drifting if "covariate" in r["scenario"]]
    found = [r for r in covariate if r["missed"] == 0 and r["max_delay"] <= 2_000]
    failing = {
        "no abrupt drift missed": [
            r for r in drifting if "abrupt" in r["scenario"] and r["missed"]
        ],
        "error-stream delay within 1.5x River's default ADWIN": [
            r for r in drifting if r["signal"] == "error" and slower_than_river(r)
        ],
        "false alarms <= 0.5 per 100k on the stationary controls": [
            r
            for r in ours
            if r["scenario"].endswith("stationary") and r["false_alarms_per_100k"] > 0.5
        ],
        f"covariate shift of {options.shift_sd} sd found within 2,000 events (score or feature)": (
            [] if found else covariate
        ),
        "every detector beats the dummy": [r for r in drifting if floor_or_below(r)],
    }
    return {
        name: {"met": not rows_, "failing": [_label(r) for r in rows_]}
        for name, rows_ in failing.items()
    }


def drift_table(report: dict[str, Any]) -> Table:
    table = Table(
        "scenario",
        "signal",
        "detector",
        "drifts",
        "missed",
        "mean delay",
        "censored",
        "false alarms / 100k",
        title="stream-app bench drift",
        title_justify="left",
    )
    for r in report["rows"]:
        delay = "-" if r["mean_delay"] is None else f"{r['mean_delay']:,.0f}"
        table.add_row(
            r["scenario"],
            r["signal"],
            r["detector"],
            str(r["drifts"]),
            str(r["missed"]),
            delay,
            "-" if r["mean_delay_censored"] is None else f"{r['mean_delay_censored']:,.0f}",
            f"{r['false_alarms_per_100k']:.2f}",
        )
    return table


def render_drift(report: dict[str, Any], console: Console) -> None:
    console.print(drift_table(report))
    for name, target in report["targets"].items():
        verdict = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
        failing = f" ({'; '.join(target['failing'])})" if target["failing"] else ""
        console.print(f"{verdict}: {name}{failing}", highlight=False)
    console.print(f"{report['seconds']:.0f} s")


def drift_command(options: DriftBenchOptions, json_path: Path | None, console: Console) -> None:
    """``stream-app bench drift``: run, print the table and the targets, write the JSON."""
    report = run_drift_bench(options, lambda line: console.print(line, markup=False))
    render_drift(report, console)
    write_json(report, json_path, console)
