"""One run of ``stream-app estimate``: predictions → calibration → estimates → the warehouse.

The job reads every prediction with its labels through the sink's endpoint (with chDB only the
sink opens the data). Each version's calibration (:class:`models.estimation.Estimator`) is
fitted on its chargeback-labelled predictions of the reference window: the first
``estimate_reference_hours`` of event time from its first prediction, the oldest predictions
being the first whose chargebacks mature; its cards and terminals give the interval's design
effects. Alert feedback is left out of the reference: it labels only alerted, high-score events.
Every hour and day window that ends after the reference is estimated from its scores alone, one
record per window to ``quality-estimates``, which the sink lands in ``quality_estimates`` (the
sink stays the warehouse's only writer).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from models.estimation import METRICS, Estimator
from stream_app.control.client import publish_quality_estimates
from stream_app.settings import Settings
from stream_app.timing import now_ms
from stream_app.warehouse.sql import FORMATS, run_query

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
#: window name → its length (UTC windows, as the quality views cut them)
WINDOWS = {"hour": HOUR_MS, "day": DAY_MS}

#: every prediction with its labels and its event's terminal (the event id when the event is not
#: stored: then it counts as a terminal of its own)
QUERY = """SELECT p.model_version AS model_version,
  toUnixTimestamp64Milli(p.event_time) AS event_time_ms, p.score AS score, p.flagged AS flagged,
  p.card_id AS card_id, if(e.merchant_id = '', p.event_id, e.merchant_id) AS terminal,
  p.chargeback_known AS chargeback_known, p.is_fraud AS is_fraud
FROM prediction_labels AS p
LEFT JOIN (SELECT event_id, merchant_id FROM events) AS e ON e.event_id = p.event_id
ORDER BY p.model_version, p.event_time, p.event_id
SETTINGS join_use_nulls = 0"""


@dataclass(frozen=True)
class VersionPredictions:
    """One model version's predictions, oldest first."""

    version: str
    event_time: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]
    flagged: npt.NDArray[np.bool_]
    card_id: npt.NDArray[np.str_]
    terminal: npt.NDArray[np.str_]
    chargeback_known: npt.NDArray[np.bool_]
    is_fraud: npt.NDArray[np.bool_]


def by_version(table: pa.Table) -> Iterator[VersionPredictions]:
    """Split the query's rows (ordered by version, then event time) per version."""
    versions = np.asarray(table.column("model_version").cast(pa.string()).to_pylist())
    columns = {
        "event_time": table.column("event_time_ms").to_numpy().astype(np.int64),
        "score": table.column("score").to_numpy().astype(np.float64),
        "flagged": table.column("flagged").to_numpy(zero_copy_only=False).astype(bool),
        "card_id": np.asarray(table.column("card_id").cast(pa.string()).to_pylist()),
        "terminal": np.asarray(table.column("terminal").cast(pa.string()).to_pylist()),
        "chargeback_known": table.column("chargeback_known")
        .to_numpy(zero_copy_only=False)
        .astype(bool),
        "is_fraud": table.column("is_fraud").to_numpy(zero_copy_only=False).astype(bool),
    }
    bounds = [0, *(np.flatnonzero(versions[1:] != versions[:-1]) + 1).tolist(), len(versions)]
    for start, end in itertools.pairwise(bounds):
        if end > start:
            yield VersionPredictions(
                str(versions[start]), **{name: c[start:end] for name, c in columns.items()}
            )


def estimate_version(
    settings: Settings, p: VersionPredictions, run: dict[str, Any]
) -> list[dict[str, Any]]:
    """The records of one version's windows; none when its reference has too few frauds."""
    reference_start = int(p.event_time[0])
    reference_end = reference_start + int(settings.estimate_reference_hours * HOUR_MS)
    reference = (p.event_time < reference_end) & p.chargeback_known
    frauds = int(p.is_fraud[reference].sum())
    if frauds < settings.estimate_min_reference_frauds or frauds == reference.sum():
        return []
    estimator = Estimator.fit(
        p.score[reference],
        p.is_fraud[reference],
        p.flagged[reference],
        clusters=[p.card_id[reference], p.terminal[reference]],
    )
    records = []
    for window, length in WINDOWS.items():
        window_start = p.event_time // length * length
        for start in np.unique(window_start[window_start + length > reference_end]).tolist():
            rows = window_start == start
            estimate = estimator.estimate(p.score[rows], p.flagged[rows])
            records.append(
                {
                    **run,
                    "model_version": p.version,
                    "window": window,
                    "window_start": start,
                    "predictions": int(rows.sum()),
                    "reference_start": reference_start,
                    "reference_end": reference_end,
                    "reference_rows": int(reference.sum()),
                    "reference_frauds": frauds,
                    **{
                        f"{name}{part}": getattr(estimate[name], field)
                        for name in METRICS
                        for part, field in (("", "estimate"), ("_low", "low"), ("_high", "high"))
                    },
                }
            )
    return records


def estimate(
    settings: Settings, progress: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    """Run once: estimate every version's windows, publish them; the records sent."""
    body = run_query(settings, QUERY, FORMATS["arrow"])
    run = {"run_id": uuid.uuid4().hex, "estimated_time": now_ms()}
    records = []
    for predictions in by_version(pa.ipc.open_stream(body).read_all()):
        found = estimate_version(settings, predictions, run)
        told = f"{len(found)} windows estimated" if found else "too few reference frauds, skipped"
        progress(f"{predictions.version}: {told}")
        records.extend(found)
    publish_quality_estimates(settings, records)
    return records
