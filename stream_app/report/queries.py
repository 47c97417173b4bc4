"""What the report reads: a few aggregating queries through the sink's read-only SQL endpoint
(:func:`~stream_app.warehouse.sql.query_rows`), each answering small tables, never raw rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stream_app.settings import Settings
from stream_app.warehouse.sql import query_rows

#: about this many points on the time axis of throughput and latency
TIME_POINTS = 120
#: bins of the score histograms over [0, 1]
SCORE_BINS = 40


@dataclass(frozen=True)
class Rows:
    """A query's answer: column names and rows."""

    columns: list[str]
    rows: list[list[Any]]

    def column(self, name: str) -> list[Any]:
        at = self.columns.index(name)
        return [row[at] for row in self.rows]

    def groups(self, key: str) -> dict[Any, Rows]:
        """The rows split by the value of column ``key``, in order of first appearance."""
        at = self.columns.index(key)
        split: dict[Any, list[list[Any]]] = {}
        for row in self.rows:
            split.setdefault(row[at], []).append(row)
        return {value: Rows(self.columns, rows) for value, rows in split.items()}


@dataclass(frozen=True)
class Totals:
    predictions: int
    dead_letters: int
    alerts: int
    labels: int
    first_scored: str | None
    last_scored: str | None
    span_s: int

    @property
    def empty(self) -> bool:
        return self.predictions == 0 and self.dead_letters == 0


TOTALS = """SELECT (SELECT count() FROM predictions) AS predictions,
  (SELECT count() FROM dead_letters) AS dead_letters, (SELECT count() FROM alerts) AS alerts,
  (SELECT count() FROM labels) AS labels, min(scored_time) AS first, max(scored_time) AS last,
  dateDiff('second', min(scored_time), max(scored_time)) AS span_s
FROM predictions"""

THROUGHPUT = """SELECT toStartOfInterval(scored_time, INTERVAL {step} SECOND) AS time,
  count() / {step} AS events_per_s,
  quantileExact(0.5)(latency_ms) AS p50_ms, quantileExact(0.99)(latency_ms) AS p99_ms
FROM (SELECT scored_time, dateDiff('millisecond', input_create_time, scored_time) AS latency_ms
  FROM predictions)
GROUP BY time ORDER BY time"""

SCORES = """SELECT version, least(floor(score * {bins}), {bins} - 1) / {bins} AS bin,
  count() AS n
FROM (
  SELECT model_version AS version, score FROM predictions
  UNION ALL SELECT assumeNotNull(challenger_version), assumeNotNull(challenger_score)
    FROM predictions WHERE challenger_version IS NOT NULL
  UNION ALL SELECT model_version, score FROM online_predictions
) GROUP BY version, bin ORDER BY version, bin"""

QUALITY = """SELECT model_version, window_start, labelled, precision, recall, roc_auc
FROM quality_hourly WHERE labelled > 0 ORDER BY model_version, window_start"""

#: the label-free estimate of ROC AUC and its interval (`stream-app estimate`), hourly as QUALITY
ESTIMATED = """SELECT model_version, window_start, estimated_roc_auc, roc_auc_low, roc_auc_high
FROM quality_estimated WHERE window = 'hour' ORDER BY model_version, window_start"""

DRIFT = """SELECT detected_time, event_time, signal, feature, detector, model_version
FROM drift_events ORDER BY detected_time"""

RETRAINS = """SELECT started_time, decision, candidate_version, reason
FROM retrain_runs ORDER BY started_time"""

#: a command applied by several workers is one change of model: its first acknowledgement
SWAPS = """SELECT min(acknowledged_at) AS time, command, any(version) AS version
FROM control_events WHERE status = 'applied' GROUP BY command_id, command ORDER BY time"""

ALERTS = """SELECT rule, count() AS alerts, countIf(l.labelled) AS labelled_alerts,
  countIf(l.labelled AND l.is_fraud) AS fraud_alerts
FROM (SELECT event_id, model_version, rule FROM alerts ARRAY JOIN rules AS rule) AS a
LEFT JOIN (SELECT event_id, model_version, labelled, is_fraud FROM prediction_labels) AS l
  USING (event_id, model_version)
GROUP BY rule ORDER BY alerts DESC, rule"""

DEAD_LETTERS = """SELECT reason, count() AS records FROM dead_letters
GROUP BY reason ORDER BY records DESC, reason"""


@dataclass(frozen=True)
class Warehouse:
    """Everything the report shows, as small tables."""

    totals: Totals
    throughput: Rows
    scores: Rows
    quality: Rows
    estimated: Rows
    drift: Rows
    retrains: Rows
    swaps: Rows
    alerts: Rows
    dead_letters: Rows


def _rows(settings: Settings, query: str) -> Rows:
    columns, rows = query_rows(settings, query)
    return Rows(columns, rows)


def step_seconds(span_s: int, points: int = TIME_POINTS) -> int:
    """The width of a time bucket that gives about ``points`` buckets over ``span_s``.

    >>> step_seconds(0), step_seconds(119), step_seconds(3600)
    (1, 1, 30)
    """
    return max(1, math.ceil(span_s / points))


def read_warehouse(settings: Settings) -> Warehouse:
    """The report's tables; ``WarehouseError`` if the warehouse cannot answer (no sink and no
    tables yet, say)."""
    ((predictions, dead, alerts, labels, first, last, span),) = _rows(settings, TOTALS).rows
    totals = Totals(
        int(predictions), int(dead), int(alerts), int(labels),
        first if predictions else None, last if predictions else None, int(span or 0),
    )  # fmt: skip
    return Warehouse(
        totals=totals,
        throughput=_rows(settings, THROUGHPUT.format(step=step_seconds(totals.span_s))),
        scores=_rows(settings, SCORES.format(bins=SCORE_BINS)),
        quality=_rows(settings, QUALITY),
        estimated=_rows(settings, ESTIMATED),
        drift=_rows(settings, DRIFT),
        retrains=_rows(settings, RETRAINS),
        swaps=_rows(settings, SWAPS),
        alerts=_rows(settings, ALERTS),
        dead_letters=_rows(settings, DEAD_LETTERS),
    )
