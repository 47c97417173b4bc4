"""One run of the retraining job: window → candidate → gate → challenger, and its record.

The candidate is trained by the project's one trainer (:mod:`models.fit`) on one thread; the
caller runs the job in a process of its own at a lower CPU priority (``stream-app retrain``),
never on a worker. Whatever the gate decides, the candidate is registered and the run is a
``retrain_runs`` row; a passing candidate is set as challenger through the promotion path the
CLI uses (:func:`stream_app.control.promotion.issue`), acknowledged by every live worker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.fit import BoosterConfig, fit_and_register
from models.loader import load_model
from models.registry import CHAMPION, FileModelStore
from stream_app.control.client import operator_name, publish_model_version, publish_retrain_run
from stream_app.control.commands import CommandKind
from stream_app.control.promotion import issue
from stream_app.retraining.gate import GateConfig, GateResult, Scorecard, decide
from stream_app.retraining.queries import RetrainError, drift_event_stored
from stream_app.retraining.window import LabelledWindow, read_window
from stream_app.settings import Settings
from stream_app.timing import now_ms

CHALLENGER_SET = "challenger"
REFUSED = "refused"
NOT_ACKNOWLEDGED = "not_acknowledged"
FAILED = "failed"
_NO_SCORES = Scorecard(float("nan"), float("nan"), float("nan"))


@dataclass(frozen=True)
class Trigger:
    """Why the job runs: by hand, or for a detection of ``drift_events``."""

    kind: str = "manual"
    drift_event: str = ""


def retrain(
    settings: Settings,
    trigger: Trigger = Trigger(),
    issued_by: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run the job once; publish and return its ``retrain_runs`` record. A drift trigger whose
    detection is not in ``drift_events`` raises ``RetrainError`` before anything is read."""
    started_ms, started = now_ms(), time.perf_counter()
    if trigger.kind == "drift" and not drift_event_stored(settings, trigger.drift_event):
        raise RetrainError(f"drift event {trigger.drift_event!r} is not in drift_events")
    run_id, by = uuid.uuid4().hex, issued_by or operator_name()
    store = FileModelStore(settings.model_dir)
    champion = store.resolve(CHAMPION).version
    window = read_window(settings)
    split = window.split(settings.retrain_holdout_fraction)
    progress(f"read {len(window):,} labelled of {window.replayed:,} events; {split:,} to train on")
    record: dict[str, Any] = {
        "run_id": run_id,
        "started_time": started_ms,
        "trigger": trigger.kind,
        "drift_event": trigger.drift_event,
        **_window_fields(window, split),
        "champion_version": champion,
        "k": settings.quality_top_k,
        "issued_by": by,
        "parent_run_id": "",
    }
    config = GateConfig.from_settings(settings)
    if split == 0 or split == len(window) or not window.labels[:split].any():
        reason = (
            f"{len(window)} labelled events, {int(window.labels.sum())} frauds: nothing to learn"
        )
        gate = GateResult(_NO_SCORES, _NO_SCORES, None, False, reason)
        return finish(settings, record, gate, REFUSED, None, started)
    fitted = fit_and_register(
        store,
        window.features,
        window.labels,
        split,
        BoosterConfig(num_trees=settings.retrain_num_trees, num_threads=1),
        {
            "source": "warehouse",
            "run_id": run_id,
            "window_start_ms": record["window_start"],
            "window_end_ms": record["holdout_start"],
        },
        progress,
    )
    publish_model_version(settings, fitted.metadata)
    champion_scores = load_model(store, champion).predict(window.features[split:])
    gate = decide(config, window.labels[split:], champion_scores, fitted.holdout_scores)
    progress(gate.reason)
    version = fitted.metadata.version
    if not gate.passed:
        return finish(settings, record, gate, REFUSED, version, started)
    result = issue(
        settings, CommandKind.SET_CHALLENGER, version, settings.retrain_ack_timeout_s, by
    )
    if result.aliases_moved:
        return finish(settings, record, gate, CHALLENGER_SET, version, started)
    unacknowledged = (
        f"{gate.reason}; the challenger command was not applied by every live worker "
        f"(refused: {result.refused}, silent: {result.silent}, answered: {len(result.acks)})"
    )
    gate = GateResult(gate.champion, gate.candidate, gate.comparison, True, unacknowledged)
    return finish(settings, record, gate, NOT_ACKNOWLEDGED, version, started)


def _window_fields(window: LabelledWindow, split: int) -> dict[str, int]:
    times, labels = window.event_time, window.labels
    return {
        "window_start": int(times[0]) if len(times) else 0,
        "holdout_start": int(times[split]) if split < len(times) else 0,
        "window_end": int(times[-1]) if len(times) else 0,
        "train_rows": split,
        "train_frauds": int(labels[:split].sum()),
        "holdout_rows": len(labels) - split,
        "holdout_frauds": int(labels[split:].sum()),
    }


def failed(settings: Settings, trigger: Trigger, reason: str, started: float) -> dict[str, Any]:
    """Publish and return the record of a run that did not finish (it crashed, hung or was
    refused before reading anything): no window, no scores, the reason."""
    record: dict[str, Any] = {
        "run_id": uuid.uuid4().hex,
        "started_time": now_ms() - int((time.perf_counter() - started) * 1000),
        "trigger": trigger.kind,
        "drift_event": trigger.drift_event,
        **dict.fromkeys(("window_start", "holdout_start", "window_end"), 0),
        **dict.fromkeys(("train_rows", "train_frauds", "holdout_rows", "holdout_frauds"), 0),
        "champion_version": FileModelStore(settings.model_dir).aliases().get(CHAMPION, ""),
        "k": settings.quality_top_k,
        "issued_by": operator_name(),
        "parent_run_id": "",
    }
    gate = GateResult(_NO_SCORES, _NO_SCORES, None, False, reason)
    return finish(settings, record, gate, FAILED, None, started)


def finish(
    settings: Settings,
    record: dict[str, Any],
    gate: GateResult,
    decision: str,
    version: str | None,
    started: float,
) -> dict[str, Any]:
    """Complete ``record`` with the gate's figures, the decision and the time taken since
    ``started`` (``time.perf_counter``); publish it to ``retrain-runs`` and return it."""
    comparison = gate.comparison
    record |= {
        **{f"champion_{name}": value for name, value in vars(gate.champion).items()},
        **{f"candidate_{name}": value for name, value in vars(gate.candidate).items()},
        "statistic": comparison.statistic if comparison else float("nan"),
        "p_value": comparison.p_value if comparison else float("nan"),
        "decision": decision,
        "reason": gate.reason,
        "candidate_version": version,
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
    publish_retrain_run(settings, record)
    return record
