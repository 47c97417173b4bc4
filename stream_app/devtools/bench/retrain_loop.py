"""The retraining loop's figures on the drift demo's scenario, read from its warehouse.

:class:`LoopDemo` is ``stream-app demo-drift`` (:mod:`stream_app.devtools.demo_drift`, its
story written to a file) that reads, before it stops, from SQL:

- the time from the detection that started the training run to the promotion every live worker
  acknowledged: in wall time (the detection's ``detected_time`` to the last ``applied`` ack of
  the ``promote`` command in ``control_events``, split at the training run's start and end) and
  in event time (the detection's event time, and the drift point's, to the first event the new
  champion scored);
- the realised quality (precision, recall, F1, ROC AUC, P@k) of the old champion before and
  after the drift point and of the new one after its promotion (``demo_drift.recovery``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from stream_app.devtools.bench.errors import BenchError
from stream_app.devtools.bench.progress import Say
from stream_app.devtools.demo import TABLE_WIDTH
from stream_app.devtools.demo_drift import DriftDemo, DriftDemoOptions, recovery
from stream_app.devtools.demo_quality import utc
from stream_app.devtools.generator import AppliedDrift
from stream_app.retraining.queries import drift_event_condition
from stream_app.settings import Settings
from stream_app.state.card import HOUR_MS
from stream_app.warehouse.sql import literal, query_rows

#: the periods of ``recovery``'s rows
BEFORE, AFTER, NEW = (
    "old champion before the drift",
    "old champion after the drift",
    "new champion after its promotion",
)


def _row(settings: Settings, query: str) -> dict[str, Any]:
    columns, rows = query_rows(settings, query)
    if not rows:
        raise BenchError(f"no row for: {query}")
    return dict(zip(columns, rows[0], strict=True))


def _ms(column: str) -> str:
    return f"toUnixTimestamp64Milli({column}) AS {column}_ms"


def loop_figures(settings: Settings, drift_ms: int, run: dict[str, Any]) -> dict[str, Any]:
    """The figures of one demo's warehouse; ``run`` is its training run's ``retrain_runs`` row."""
    new = str(run["candidate_version"])
    detection = _row(
        settings,
        f"SELECT {_ms('event_time')}, {_ms('detected_time')}, signal, detector, feature "  # noqa: S608
        f"FROM drift_events WHERE {drift_event_condition(str(run['drift_event']))}",
    )
    training = _row(
        settings,
        f"SELECT {_ms('started_time')}, wall_seconds FROM retrain_runs "  # noqa: S608
        f"WHERE run_id = {literal(str(run['run_id']))}",
    )
    promoted = _row(
        settings,
        "SELECT toUnixTimestamp64Milli(max(acknowledged_at)) AS acknowledged_ms, "  # noqa: S608
        "count() AS workers FROM control_events WHERE command = 'promote' "
        f"AND version = {literal(new)} AND status = 'applied'",
    )
    first_new = _row(
        settings,
        "SELECT toUnixTimestamp64Milli(min(event_time)) AS first_ms FROM predictions "  # noqa: S608
        f"WHERE model_version = {literal(new)}",
    )
    if not promoted["workers"]:
        raise BenchError(f"version {new} was not promoted: no figures of the loop")
    detected, acked = detection["detected_time_ms"], promoted["acknowledged_ms"]
    run_start = training["started_time_ms"]
    run_end = run_start + 1000 * training["wall_seconds"]
    columns, rows = query_rows(
        settings, recovery(drift_ms, str(run["champion_version"]), new, settings.quality_top_k)
    )
    quality = {row[0]: dict(zip(columns[1:], row[1:], strict=True)) for row in rows}
    return {
        "detection": {
            "id": run["drift_event"],
            **{k: detection[k] for k in ("signal", "detector", "feature")},
            "event_time": utc(detection["event_time_ms"]),
            "detected_time": utc(detected),
        },
        "drift_point": utc(drift_ms),
        "new_version": new,
        "workers_acknowledged": promoted["workers"],
        "promoted_time": utc(acked),
        "wall_s": {
            "detection_to_promotion": round((acked - detected) / 1000, 1),
            "detection_to_training": round((run_start - detected) / 1000, 1),
            "training": round(training["wall_seconds"], 1),
            "training_to_promotion": round((acked - run_end) / 1000, 1),
        },
        "event_hours": {
            "detection_to_promotion": round(
                (first_new["first_ms"] - detection["event_time_ms"]) / HOUR_MS, 2
            ),
            "drift_to_promotion": round((first_new["first_ms"] - drift_ms) / HOUR_MS, 2),
        },
        "quality": quality,
        "k": settings.quality_top_k,
    }


class LoopDemo(DriftDemo):
    """The drift demo, reading the loop's figures from its warehouse before it stops."""

    figures: dict[str, Any] | None = None

    def _story(
        self, settings: Settings, drift: tuple[AppliedDrift, ...], run: dict[str, Any]
    ) -> None:
        super()._story(settings, drift, run)
        if run["decision"] == "challenger":
            self.figures = loop_figures(settings, drift[0].event_time, run)


MakeDemo = Callable[[DriftDemoOptions, Console], LoopDemo]


def measure_loop(
    options: DriftDemoOptions, state_dir: Path, say: Say, make_demo: MakeDemo = LoopDemo
) -> dict[str, Any]:
    """Part 2: the drift demo in ``state_dir``, its story in ``state_dir/story.txt``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    story = state_dir / "story.txt"
    say(f"[loop] the drift demo's scenario; its story in {story}")
    with story.open("w", encoding="utf-8") as out:
        demo = make_demo(
            replace(options, state_dir=state_dir),
            Console(file=out, width=TABLE_WIDTH),
        )
        demo.run()
    if demo.figures is None:
        raise BenchError(f"the training run set no challenger: see {story}")
    return demo.figures


def loop_table(figures: dict[str, Any]) -> Table:
    wall, event = figures["wall_s"], figures["event_hours"]
    detection = figures["detection"]
    table = Table(
        "period",
        "labelled",
        "frauds",
        "precision",
        "recall",
        "F1",
        "ROC AUC",
        f"P@{figures['k']}",
        title=f"the loop on the drift demo: detection {detection['id']} → version "
        f"{figures['new_version']} promoted (acknowledged by {figures['workers_acknowledged']} "
        f"worker(s)) in {wall['detection_to_promotion']:,} s wall (training "
        f"{wall['training']} s), {event['detection_to_promotion']} h of event time "
        f"({event['drift_to_promotion']} h after the drift point)",
        title_justify="left",
    )
    for period in (BEFORE, AFTER, NEW):
        q = figures["quality"].get(period)
        if q is not None:
            table.add_row(
                period,
                *(str(q[c]) for c in ("labelled", "frauds", "precision", "recall", "f1")),
                *(str(q[c]) for c in ("roc_auc", "p_at_k")),
            )
    return table
