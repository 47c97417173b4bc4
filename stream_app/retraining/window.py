"""The recent labelled window, read from the warehouse as Arrow and replayed through the serving
feature code in the order the workers consumed it.

Every event of the window is replayed (the per-card velocity features need the unlabelled ones
too); the labelled ones are what a model learns from. An event is fraud when any label source says
so. Rows come ordered by ``(source_partition, source_offset)``: a card's events sit in one
partition, so each card's history replays in its consumption order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from models.fit import FloatArray, batch_features
from stream_app.events import TransactionBatch
from stream_app.settings import Settings
from stream_app.warehouse.sql import FORMATS, run_query

STRING_COLUMNS = (
    "event_id", "card_id", "merchant_id", "merchant_category", "currency", "channel",
    "card_country", "merchant_country",
)  # fmt: skip

QUERY = """WITH (SELECT max(event_time) FROM events) AS latest
SELECT {strings}, amount, toUnixTimestamp64Milli(event_time) AS event_time_ms,
  event_id IN (SELECT event_id FROM labels) AS labelled,
  event_id IN (SELECT event_id FROM labels WHERE is_fraud) AS is_fraud
FROM events
WHERE event_time > latest - toIntervalMillisecond({window_ms})
ORDER BY source_partition, source_offset"""


@dataclass(frozen=True)
class LabelledWindow:
    """The labelled events of a window, oldest first: their features, labels and event times."""

    features: FloatArray
    labels: FloatArray
    event_time: npt.NDArray[np.int64]
    replayed: int
    """events replayed to build the features, labelled or not"""

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, holdout_fraction: float) -> int:
        """The first held-out row: the most recent ``holdout_fraction`` of the rows."""
        return int(len(self) * (1.0 - holdout_fraction))


def window_query(window_hours: float) -> str:
    """The window's SQL (the endpoint's session has the warehouse's database)."""
    return QUERY.format(strings=", ".join(STRING_COLUMNS), window_ms=int(window_hours * 3.6e6))


def labelled_window(table: pa.Table) -> LabelledWindow:
    """Replay the serving feature code over ``table`` (rows in consumption order), keep the
    labelled rows ordered by event time."""
    strings = {name: table.column(name).cast(pa.string()).to_pylist() for name in STRING_COLUMNS}
    event_time = table.column("event_time_ms").to_numpy().astype(np.int64)
    batch = TransactionBatch(
        **strings,
        amount=table.column("amount").to_numpy().astype(np.float64),
        event_time=event_time,
    )
    features = batch_features(batch)
    labelled = np.flatnonzero(table.column("labelled").to_numpy().astype(bool))
    rows = labelled[np.argsort(event_time[labelled], kind="stable")]
    labels = table.column("is_fraud").to_numpy().astype(np.float64)[rows]
    return LabelledWindow(features[rows], labels, event_time[rows], len(batch))


def read_window(settings: Settings) -> LabelledWindow:
    """The last ``retrain_window_hours`` of events with their labels, through the sink's
    endpoint as Arrow (with chDB, only the sink opens the data)."""
    body = run_query(settings, window_query(settings.retrain_window_hours), FORMATS["arrow"])
    return labelled_window(pa.ipc.open_stream(body).read_all())
