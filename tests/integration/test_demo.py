"""The demo, small: starts everything, streams, labels, summarises from SQL, stops everything."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from stream_app.devtools.demo import Demo, DemoOptions
from stream_app.devtools.demo_quality import DRIFT_DETECTIONS, QUALITY_BY_DAY
from stream_app.devtools.generator import DAY_MS
from stream_app.devtools.produce import ProduceReport
from stream_app.settings import Settings
from tests.integration.test_quality import (
    Scored,
    expected_at_k,
    expected_windows,
    view,
)

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]


@dataclass(frozen=True)
class Declined(Scored):
    """A demo prediction: flagged when the worker declined it (the model's own threshold)."""

    declined: bool = False

    @property
    def flagged(self) -> bool:
        return self.declined


class RecordsPrinted(Demo):
    """A demo keeping every table it printed, by title, as printed."""

    printed: dict[str, list[tuple[str, ...]]]

    def _table(
        self, settings: Settings, title: str, query: str, with_sql: bool = False
    ) -> list[tuple[str, ...]]:
        rows = super()._table(settings, title, query, with_sql)
        self.printed = {**getattr(self, "printed", {}), title: rows}
        return rows


class ReadBackDemo(RecordsPrinted):
    """The demo, reading back its quality table, predictions and labels before it stops."""

    read_back: dict[str, list[dict[str, Any]]]

    def _settings_overrides(self) -> dict[str, Any]:
        # 10,000 events are 100 minutes of event time, within the score monitor's warm-up after
        # a cold start (a day): without it, both kinds of monitors read the shift
        return {**super()._settings_overrides(), "drift_score_warmup_s": 0.0}

    def _summary(self, settings: Settings, report: ProduceReport, seconds: float) -> None:
        super()._summary(settings, report, seconds)
        self.top_k = settings.quality_top_k
        self.read_back = {
            "quality": view(settings, QUALITY_BY_DAY),
            "predictions": view(
                settings,
                "SELECT model_version, event_id, card_id, score, decision, "
                "toUnixTimestamp64Milli(event_time) AS event_ms FROM predictions",
            ),
            "labels": view(settings, "SELECT event_id, label_source, is_fraud FROM labels"),
            "drift": view(settings, DRIFT_DETECTIONS.split(" LIMIT")[0]),
        }


def scored_rows(predictions: list[dict[str, Any]], labels: list[dict[str, Any]]) -> list[Scored]:
    truth = {(x["event_id"], x["label_source"]): bool(x["is_fraud"]) for x in labels}
    return [
        Declined(
            p["event_id"], p["card_id"], p["model_version"], int(p["event_ms"]), p["score"],
            truth.get((p["event_id"], "chargeback")), truth.get((p["event_id"], "alert_feedback")),
            declined=p["decision"] == "decline",
        )
        for p in predictions
    ]  # fmt: skip


def agrees(printed: Any, computed: float | None) -> bool:
    """A figure the demo printed (rounded to 3 places) against the one computed here."""
    if computed is None:  # undefined: NaN in ClickHouse (null in JSON)
        return printed is None or math.isnan(printed)
    return printed is not None and abs(printed - computed) <= 0.0005 + 1e-9


def test_demo_streams_labels_summarises_and_stops_everything(tmp_path):
    console = Console(record=True, width=200)
    options = DemoOptions(
        events=10_000, bad_fraction=0.02, state_dir=tmp_path, drift="covariate-shift"
    )
    demo = ReadBackDemo(options, console)
    demo.run()
    text = console.export_text()
    for title in ("Predictions per model version", "Score distribution", "Highest-scored cards",
                  "Alerts per rule", "Dead letters by reason", "stream-app sql",
                  "Labels by source", "Quality per model version and day",
                  "Quality per hour around the drift at", "Drift detections"):  # fmt: skip
        assert title in text, title
    line = next(line for line in text.splitlines() if line.startswith("produced") and "+" in line)
    # "produced V valid (F fraud) + M malformed; stored V predictions + M dead letters"
    words = line.replace(",", "").split()
    valid, malformed = int(words[1]), int(words[6])
    assert valid + malformed == options.events and malformed > 0
    assert f"stored {valid} predictions + {malformed} dead letters" in line.replace(",", "")
    assert all(not child.alive() for child in demo.children)
    assert demo.stack.broker is not None
    assert not demo.stack.broker.running

    # labels landed: every chargeback sent and every verdict, one per event and source
    line = next(line for line in text.splitlines() if line.startswith("labels stored"))
    chargebacks, verdicts = (int(w) for w in line.replace(",", "").split() if w.isdigit())
    labels = demo.read_back["labels"]
    assert sum(x["label_source"] == "chargeback" for x in labels) == chargebacks > 0.9 * valid
    assert sum(x["label_source"] == "alert_feedback" for x in labels) == verdicts > 0

    # the quality table printed agrees with the figures computed here from what was stored
    rows = scored_rows(demo.read_back["predictions"], labels)
    assert len(rows) == valid
    windows, at_k = expected_windows(rows, DAY_MS), expected_at_k(rows, demo.top_k)
    quality = demo.read_back["quality"]
    assert len(quality) == len(windows) > 0
    for got in quality:
        day = int(datetime.fromisoformat(got["day"]).replace(tzinfo=UTC).timestamp() * 1000)
        want = windows[(got["version"], day)]
        counts = int(got["events"]), int(got["labelled"])  # 64-bit integers: JSON strings
        assert counts == (want["predictions"], want["labelled"])
        for column in ("precision", "recall", "roc_auc", "pr_auc", "chargeback_maturity",
                       "feedback_maturity"):  # fmt: skip
            assert agrees(got[column], want[column]), (got["day"], column, got, want)
        assert agrees(got["p_at_k"], at_k[(got["version"], day)][0]), got

    # the drift detections printed are the warehouse's, with what each detector measured
    (title,) = (title for title in demo.printed if title.startswith("Drift detections"))
    stored = {tuple(str(v) for v in row.values()) for row in demo.read_back["drift"]}
    assert demo.printed[title], "the covariate shift was detected and printed"
    assert set(demo.printed[title]) <= stored, (demo.printed[title], stored)
