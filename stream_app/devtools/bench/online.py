"""``stream-app bench online``: which River classifier the online learner should be.

Each scenario runs the generator (seed 11, the champion's time scale) with that scenario's drift
schedule and computes the features as training does. Every kind of :mod:`models.online` then
reads the stream in batches as the learner does: it scores a batch, then learns the labels that
have arrived, those of events ``label_delay`` events old or older. Quality is the ROC and PR AUC
of those shadow scores before and after the drift point (the first ``warmup`` events, while the
model starts from nothing, left out); cost is µs per scored row and per learnt row. The champion
(trained as ``stream-app models train`` trains it, seed 1) is scored on the same events.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from models.evaluation import average_precision, roc_auc
from models.fit import training_features
from models.loader import load_model
from models.online import KINDS, OnlineModel
from models.registry import FileModelStore
from models.train import TrainingConfig, train_model
from stream_app.devtools.bench.render import write_json
from stream_app.devtools.generator import TransactionGenerator, drift_schedule
from stream_app.events import FloatArray
from stream_app.features import FEATURE_NAMES


@dataclass(frozen=True)
class OnlineBenchOptions:
    seed: int = 11
    train_events: int = 200_000
    events: int = 40_000
    #: events left out of the quality while the online model starts from nothing
    warmup: int = 3_000
    #: a label arrives this many events after its event
    label_delay: int = 2_000
    batch: int = 500
    scenarios: tuple[str, ...] = ("none", "new-pattern")
    kinds: tuple[str, ...] = tuple(KINDS)

    @classmethod
    def quick(cls) -> OnlineBenchOptions:
        """A few seconds' worth, for the test suite."""
        return cls(
            train_events=20_000, events=8_000, warmup=2_000, label_delay=500, kinds=("logistic",)
        )


def _quality(labels: np.ndarray[Any, Any], scores: FloatArray) -> dict[str, float]:
    return {
        "roc_auc": roc_auc(labels, scores),
        "pr_auc": average_precision(labels, scores),
        "frauds": int(labels.sum()),
    }


def _prequential(
    kind: str, features: FloatArray, labels: np.ndarray[Any, Any], options: OnlineBenchOptions
) -> tuple[FloatArray, float, float]:
    """Shadow scores of every event, µs per scored row, µs per learnt row."""
    model = OnlineModel(kind, FEATURE_NAMES)
    scores = np.empty(len(labels))
    predict_s = learn_s = 0.0
    learnt = 0
    for start in range(0, len(labels), options.batch):
        end = start + options.batch
        began = time.perf_counter()
        scores[start:end] = model.predict(features[start:end])
        predict_s += time.perf_counter() - began
        ripe = max(0, end - options.label_delay)
        began = time.perf_counter()
        model.learn(features[learnt:ripe], labels[learnt:ripe].tolist())
        learn_s += time.perf_counter() - began
        learnt = max(learnt, ripe)
    return scores, 1e6 * predict_s / len(labels), 1e6 * learn_s / max(1, learnt)


def run_scenario(
    champion: Callable[[FloatArray], FloatArray],
    scenario: str,
    options: OnlineBenchOptions,
    say: Callable[[str], None],
) -> dict[str, Any]:
    schedule = drift_schedule(scenario, options.events)
    generator = TransactionGenerator(
        seed=options.seed, time_scale=TrainingConfig.time_scale, drift=schedule
    )
    generated = list(itertools.islice(generator, options.events))
    features = training_features([g.event for g in generated])
    labels = np.fromiter((g.is_fraud for g in generated), dtype=bool, count=len(generated))
    drift_at = schedule[0].index if schedule else options.events
    parts = {"before_drift": slice(options.warmup, drift_at), "after_drift": slice(drift_at, None)}

    def quality(scores: FloatArray) -> dict[str, dict[str, float]]:
        return {name: _quality(labels[part], scores[part]) for name, part in parts.items()
                if len(labels[part])}  # fmt: skip

    models: list[dict[str, Any]] = [{"model": "champion (LightGBM)", **quality(champion(features))}]
    for kind in options.kinds:
        scores, predict_us, learn_us = _prequential(kind, features, labels, options)
        models.append(
            {"model": kind, "predict_us": predict_us, "learn_us": learn_us, **quality(scores)}
        )
        say(f"{scenario}: {models[-1]}")
    return {"scenario": scenario, "drift_at": drift_at, "models": models}


def run_online_bench(options: OnlineBenchOptions, say: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        store = FileModelStore(Path(directory))
        version = train_model(store, TrainingConfig(events=options.train_events), progress=say)
        champion = load_model(store, version.version)
    results = [run_scenario(champion.predict, s, options, say) for s in options.scenarios]
    return {
        "options": asdict(options),
        "scenarios": results,
        "seconds": round(time.perf_counter() - started, 1),
    }


def online_table(report: dict[str, Any]) -> Table:
    table = Table(
        "scenario", "model", "ROC AUC before / after", "PR AUC before / after",
        "µs / scored row", "µs / learnt row", title="stream-app bench online", title_justify="left",
    )  # fmt: skip
    for result in report["scenarios"]:
        for m in result["models"]:
            after = m.get("after_drift")

            def pair(metric: str, m: dict[str, Any] = m, after: Any = after) -> str:
                return f"{m['before_drift'][metric]:.3f}" + (
                    f" / {after[metric]:.3f}" if after else ""
                )

            cost = [f"{m[k]:.1f}" if k in m else "-" for k in ("predict_us", "learn_us")]
            table.add_row(result["scenario"], m["model"], pair("roc_auc"), pair("pr_auc"), *cost)
    return table


def online_command(options: OnlineBenchOptions, json_path: Path | None, console: Console) -> None:
    """``stream-app bench online``: run, print the table, write the JSON."""
    report = run_online_bench(options, lambda line: console.print(line, markup=False))
    console.print(online_table(report))
    console.print(f"{report['seconds']:.0f} s")
    write_json(report, json_path, console)
