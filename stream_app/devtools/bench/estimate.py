"""``stream-app bench estimate``: the label-free estimate (CBPE) against the realised figures.

A champion is trained as ``stream-app models train`` trains it (seed 1). Each scenario then runs
the generator on another seed with that scenario's drift schedule, computes the features as
training does, and scores every event. After a warm-up of the card state, the next
``reference_events`` are the labelled reference the calibration is fitted on; each later window
is estimated from its scores alone and compared with the figures its labels give. The naive
baseline carries the reference's realised figures forward. With the default sizes the drift
point falls on a window boundary, so every window is wholly before or after it.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from models.estimation import METRICS, Estimator
from models.evaluation import precision_recall_f1, roc_auc
from models.fit import training_features
from models.loader import load_model
from models.registry import FileModelStore
from models.runtime import LightGBMRuntime
from models.train import TrainingConfig, train_model
from stream_app.devtools.bench.render import write_json
from stream_app.devtools.generator import TransactionGenerator, drift_schedule

#: the issue's targets, on windows with at least ``min_frauds`` frauds
TARGET_AUC_ERROR, TARGET_COVERAGE = 0.03, 0.90


@dataclass(frozen=True)
class EstimateBenchOptions:
    #: the streams' seed (the champion is trained on seed 1)
    seed: int = 11
    train_events: int = 200_000
    #: events before the reference that only warm the card state up, as a running worker's is:
    #: more than a day of event time at the training's time scale (about 120,000 events a day),
    #: so that the per-card 24-hour features are full when the reference starts
    warmup_events: int = 140_000
    #: a day of event time, as ``stream-app estimate`` calibrates on ``estimate_reference_hours``
    #: (24): frauds come in episodes and by hour of the day, so a shorter reference carries the
    #: P(fraud | score) of the hours and episodes it happened to hold into every estimate
    reference_events: int = 120_000
    window_events: int = 60_000
    #: windows after the reference; the drift point, halfway through the run, falls between the
    #: second and the third
    windows: int = 6
    scenarios: tuple[str, ...] = ("none", "covariate-shift", "new-pattern", "pattern-moves")
    #: windows with fewer frauds are reported but left out of the summary
    min_frauds: int = 500
    #: label draws behind each interval
    draws: int = 200

    @classmethod
    def quick(cls) -> EstimateBenchOptions:
        """Some 10 seconds' worth, for the test suite: a covariate shift and a concept drift,
        both windows after the drift point."""
        return cls(
            train_events=30_000,
            warmup_events=5_000,
            reference_events=20_000,
            window_events=10_000,
            windows=2,
            scenarios=("covariate-shift", "new-pattern"),
            min_frauds=50,
            draws=100,
        )

    @property
    def events(self) -> int:
        return self.reference_events + self.windows * self.window_events


def _realised(
    labels: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], threshold: float
) -> dict[str, float]:
    return {**precision_recall_f1(labels, scores, threshold), "roc_auc": roc_auc(labels, scores)}


def _scored(
    model: LightGBMRuntime, scenario: str, options: EstimateBenchOptions
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], list[np.ndarray[Any, Any]], int]:
    """Scores, labels and clusters (card ids, terminal ids) of a scenario's run after the
    warm-up, and its drift point (counted from the reference's start; ``events`` if none)."""
    warmup = options.warmup_events
    schedule = drift_schedule(scenario, options.events)
    generator = TransactionGenerator(
        seed=options.seed,
        time_scale=TrainingConfig.time_scale,
        drift=[replace(point, index=point.index + warmup) for point in schedule],
    )
    generated = list(itertools.islice(generator, warmup + options.events))
    scores = model.predict(training_features([g.event for g in generated]))[warmup:]
    labels = np.fromiter((g.is_fraud for g in generated[warmup:]), dtype=bool, count=len(scores))
    clusters = [
        np.array([g.event.card_id for g in generated[warmup:]]),
        np.array([g.event.merchant_id for g in generated[warmup:]]),
    ]
    return scores, labels, clusters, schedule[0].index if schedule else options.events


def run_scenario(
    model: LightGBMRuntime, scenario: str, options: EstimateBenchOptions
) -> dict[str, Any]:
    """One scenario: per window, the estimate with its interval, the realised figures and the
    baseline's; then the summary over windows with enough frauds."""
    scores, labels, clusters, drift_at = _scored(model, scenario, options)
    reference = slice(0, options.reference_events)
    estimator = Estimator.fit(
        scores[reference],
        labels[reference],
        scores[reference] >= model.threshold,
        clusters=[c[reference] for c in clusters],
        seed=options.seed,
    )
    baseline = _realised(labels[reference], scores[reference], model.threshold)
    windows = []
    for number in range(options.windows):
        start = options.reference_events + number * options.window_events
        window = slice(start, start + options.window_events)
        estimate = estimator.estimate(
            scores[window], scores[window] >= model.threshold, draws=options.draws, seed=number
        )
        realised = _realised(labels[window], scores[window], model.threshold)
        windows.append(
            {
                "start": start,
                "after_drift": start >= drift_at,
                "frauds": int(labels[window].sum()),
                **{
                    name: {
                        "estimate": estimate[name].estimate,
                        "low": estimate[name].low,
                        "high": estimate[name].high,
                        "realised": realised[name],
                        "covered": estimate[name].covers(realised[name]),
                    }
                    for name in METRICS
                },
            }
        )
    return {
        "scenario": scenario,
        "drift_at": drift_at,
        "reference": {
            "frauds": int(labels[reference].sum()),
            **baseline,
            "design_effects": dict(zip(METRICS, estimator.design_effects.tolist(), strict=True)),
        },
        "windows": windows,
        "summary": {
            part: _summary([w for w in windows if w["after_drift"] == after], baseline, options)
            for part, after in (("before_drift", False), ("after_drift", True))
        },
    }


def _summary(
    windows: list[dict[str, Any]], baseline: dict[str, float], options: EstimateBenchOptions
) -> dict[str, Any]:
    counted = [w for w in windows if w["frauds"] >= options.min_frauds]
    if not counted:
        return {"windows": 0}
    auc = [w["roc_auc"] for w in counted]
    error = statistics.median(abs(a["estimate"] - a["realised"]) for a in auc)
    coverage = {name: sum(w[name]["covered"] for w in counted) / len(counted) for name in METRICS}
    return {
        "windows": len(counted),
        "auc_median_abs_error": error,
        "baseline_auc_median_abs_error": statistics.median(
            abs(baseline["roc_auc"] - a["realised"]) for a in auc
        ),
        "coverage": coverage,
        "targets_met": error <= TARGET_AUC_ERROR and coverage["roc_auc"] >= TARGET_COVERAGE,
    }


def run_estimate_bench(options: EstimateBenchOptions, say: Callable[[str], None]) -> dict[str, Any]:
    """Train the champion, then every scenario."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        store = FileModelStore(Path(directory))
        version = train_model(store, TrainingConfig(events=options.train_events), progress=say)
        model = load_model(store, version.version)
    results = []
    for scenario in options.scenarios:
        results.append(run_scenario(model, scenario, options))
        say(f"{scenario}: {time.perf_counter() - started:.0f} s")
    return {
        "options": asdict(options),
        "model": {"threshold": model.threshold, **version.evaluation},
        "scenarios": results,
        "seconds": round(time.perf_counter() - started, 1),
    }


def estimate_table(report: dict[str, Any]) -> Table:
    table = Table(
        "scenario",
        "window",
        "frauds",
        *(f"{name} est. [95 %] / real" for name in ("roc_auc", "precision", "recall")),
        title="stream-app bench estimate",
        title_justify="left",
    )
    for result in report["scenarios"]:
        for w in result["windows"]:
            cells = [
                f"{w[n]['estimate']:.3f} [{w[n]['low']:.3f}, {w[n]['high']:.3f}] / "
                f"{w[n]['realised']:.3f}{'' if w[n]['covered'] else ' ✗'}"
                for n in ("roc_auc", "precision", "recall")
            ]
            after = " (drifted)" if w["after_drift"] else ""
            table.add_row(result["scenario"], f"{w['start']:,}{after}", str(w["frauds"]), *cells)
    return table


def render_estimate(report: dict[str, Any], console: Console) -> None:
    console.print(estimate_table(report))
    for result in report["scenarios"]:
        for part, s in result["summary"].items():
            if not s["windows"]:
                continue
            coverage = ", ".join(f"{n} {c:.0%}" for n, c in s["coverage"].items())
            console.print(
                f"{result['scenario']}, {part.replace('_', ' ')} ({s['windows']} windows): ROC AUC "
                f"median |error| {s['auc_median_abs_error']:.3f} (baseline "
                f"{s['baseline_auc_median_abs_error']:.3f}); covered: {coverage}",
                highlight=False,
            )
    console.print(f"{report['seconds']:.0f} s")


def estimate_command(
    options: EstimateBenchOptions, json_path: Path | None, console: Console
) -> None:
    """``stream-app bench estimate``: run, print the table and the summaries, write the JSON."""
    report = run_estimate_bench(options, lambda line: console.print(line, markup=False))
    render_estimate(report, console)
    write_json(report, json_path, console)
