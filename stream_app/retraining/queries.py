"""What the retraining loop asks the warehouse, read-only through the sink's endpoint.

Values that reach a query's text are either integers or quoted as ClickHouse string literals
(:func:`literal`): a drift event's id comes from a user or from the drift-events topic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from stream_app.errors import StreamAppError
from stream_app.settings import Settings
from stream_app.warehouse.sql import FORMATS, literal, query_rows, run_query

_DRIFT_EVENT_ID = re.compile(r"(\d+):(\d+):([^:]+):(.*)")


class RetrainError(StreamAppError):
    """The retraining loop was asked something it cannot do (an unknown drift event)."""


def drift_event_id(event: Mapping[str, Any]) -> str:
    """The id of a detection (``partition:offset:detector:feature``), as runs record it."""
    return (
        f"{event['input_partition']}:{event['input_offset']}:{event['detector']}:{event['feature']}"
    )


def drift_event_condition(event_id: str) -> str:
    """The ``WHERE`` condition of ``drift_events`` that selects the detection ``event_id`` (a
    malformed id raises).

    >>> print(drift_event_condition("3:493:ph:"))
    input_partition = 3 AND input_offset = 493 AND detector = 'ph' AND feature = ''
    """
    match = _DRIFT_EVENT_ID.fullmatch(event_id)
    if match is None:
        raise RetrainError(f"drift event {event_id!r}: not partition:offset:detector:feature")
    partition, offset, detector, feature = match.groups()
    return (
        f"input_partition = {int(partition)} AND input_offset = {int(offset)}"
        f" AND detector = {literal(detector)} AND feature = {literal(feature)}"
    )


def drift_event_stored(settings: Settings, event_id: str) -> bool:
    """Whether ``drift_events`` holds the detection ``event_id`` (a malformed id raises)."""
    query = f"SELECT count() FROM drift_events WHERE {drift_event_condition(event_id)}"  # noqa: S608
    return scalar(settings, query) > 0


def scalar(settings: Settings, query: str) -> int:
    _, rows = query_rows(settings, query)
    return int(rows[0][0])


def last_window_end_ms(settings: Settings) -> int:
    """Event time (epoch ms) where the last training run's window ended; 0 before any run."""
    return scalar(
        settings,
        "SELECT toUnixTimestamp64Milli(max(window_end)) FROM retrain_runs"
        " WHERE trigger IN ('manual', 'drift') AND candidate_version IS NOT NULL",
    )


def frauds_since(settings: Settings, since_ms: int) -> int:
    """Labelled frauds whose events are dated after ``since_ms`` (epoch ms)."""
    return scalar(
        settings,
        "SELECT uniqExact(event_id) FROM labels WHERE is_fraud"  # noqa: S608
        f" AND toUnixTimestamp64Milli(event_time) > {int(since_ms)}",
    )


def decisions_for(settings: Settings, event_id: str) -> list[dict[str, Any]]:
    """The ``retrain_runs`` rows of the detection ``event_id``, oldest first: its training runs
    and their rollout steps (what a restarted retrainer resumes from)."""
    names, rows = query_rows(
        settings,
        "SELECT run_id, trigger, decision, drift_event, parent_run_id, champion_version,"  # noqa: S608
        " candidate_version FROM retrain_runs"
        f" WHERE drift_event = {literal(event_id)} ORDER BY started_time",
    )
    return [dict(zip(names, row, strict=True)) for row in rows]


def since_last_window(settings: Settings) -> tuple[int, int]:
    """Where the last training run's window ended (:func:`last_window_end_ms`) and the labelled
    frauds dated after it (:func:`frauds_since`): what the policy's cool-down and minimum of new
    frauds ask."""
    since = last_window_end_ms(settings)
    return since, frauds_since(settings, since)


def _pair(champion: str, challenger: str) -> str:
    return f"model_version = {literal(champion)} AND challenger_version = {literal(challenger)}"


def shadow_progress(settings: Settings, champion: str, challenger: str) -> tuple[int, int]:
    """Predictions of ``champion`` with ``challenger`` in shadow, and the labelled frauds among
    them."""
    _, rows = query_rows(
        settings,
        "SELECT count(), countIf(event_id IN (SELECT event_id FROM labels WHERE is_fraud))"  # noqa: S608
        f" FROM predictions WHERE {_pair(champion, challenger)}",
    )
    return int(rows[0][0]), int(rows[0][1])


@dataclass(frozen=True)
class ShadowScores:
    """The labelled events both models scored, oldest first."""

    labels: npt.NDArray[np.float64]
    champion: npt.NDArray[np.float64]
    challenger: npt.NDArray[np.float64]
    event_time: npt.NDArray[np.int64]


def shadow_scores(settings: Settings, champion: str, challenger: str) -> ShadowScores:
    """Both models' scores of the labelled events they scored together, as Arrow."""
    query = (
        "SELECT event_id IN (SELECT event_id FROM labels WHERE is_fraud) AS is_fraud,"  # noqa: S608
        " score, assumeNotNull(challenger_score) AS challenger,"
        " toUnixTimestamp64Milli(event_time) AS event_time_ms"
        f" FROM predictions WHERE {_pair(champion, challenger)}"
        " AND event_id IN (SELECT event_id FROM labels) ORDER BY event_time, event_id"
    )
    table = pa.ipc.open_stream(run_query(settings, query, FORMATS["arrow"])).read_all()

    def column(name: str) -> npt.NDArray[np.float64]:
        values: npt.NDArray[np.float64] = table.column(name).to_numpy().astype(np.float64)
        return values

    return ShadowScores(
        column("is_fraud"),
        column("score"),
        column("challenger"),
        table.column("event_time_ms").to_numpy().astype(np.int64),
    )
