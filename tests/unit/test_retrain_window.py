"""The retraining window (stream_app/retraining/window.py): the features it replays from an
Arrow table equal the trainer's own over the same events in consumption order, and only the
labelled events are kept, oldest first."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa

from models.fit import training_features
from stream_app.devtools.generator import TransactionGenerator
from stream_app.retraining.window import STRING_COLUMNS, labelled_window, window_query


def test_the_window_replays_every_event_and_keeps_the_labelled_ones_by_event_time() -> None:
    generated = list(itertools.islice(TransactionGenerator(seed=3, fraud_rate=0.05), 3000))
    events = [g.event for g in generated]
    rng = np.random.default_rng(0)
    labelled = rng.random(len(events)) < 0.6
    fraud = np.array([g.is_fraud for g in generated])
    # as the warehouse answers: strings as binary (ClickHouse's Arrow default), times in ms
    table = pa.table(
        {
            **{
                name: pa.array([getattr(e, name).encode() for e in events], pa.binary())
                for name in STRING_COLUMNS
            },
            "amount": [e.amount for e in events],
            "event_time_ms": [e.event_time for e in events],
            "labelled": pa.array(labelled.astype(np.uint8)),
            "is_fraud": pa.array((labelled & fraud).astype(np.uint8)),
        }
    )
    window = labelled_window(table)
    rows = np.flatnonzero(labelled)
    rows = rows[np.argsort([events[i].event_time for i in rows], kind="stable")]
    assert window.replayed == len(events)
    assert len(window) == labelled.sum()
    np.testing.assert_array_equal(window.features, training_features(events)[rows])
    np.testing.assert_array_equal(window.labels, fraud[rows].astype(float))
    assert (np.diff(window.event_time) >= 0).all()
    assert window.split(0.25) == int(len(window) * 0.75)


def test_the_query_reads_the_window_in_consumption_order() -> None:
    query = window_query(1.5)
    assert "toIntervalMillisecond(5400000)" in query
    assert query.rstrip().endswith("ORDER BY source_partition, source_offset")
