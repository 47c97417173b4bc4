"""Features: training and serving compute the same vectors, whatever the wire format."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.codecs.base import TransactionCodec
from stream_app.codecs.factory import avro_transactions, schema_registry, transaction_decoder
from stream_app.codecs.json import JsonCodec
from stream_app.events import Transaction, TransactionBatch
from stream_app.features import CATEGORICAL_FEATURES, FEATURE_NAMES, compute_features
from stream_app.generator import TransactionGenerator
from stream_app.settings import Settings

#: known and unknown categories, so that NaN codes are part of what must match
ODD_EVENTS = [
    Transaction("odd-1", "c1", "m1", "teleportation", 1.0, "EUR", "pigeon", "FR", "FR", 1),
    Transaction("odd-2", "c2", "m2", "", 99_999.99, "", "", "", "XX", 2**62),
]


def generated(count: int, seed: int = 5) -> list[Transaction]:
    return [g.event for g in itertools.islice(TransactionGenerator(seed=seed), count)]


POOL = generated(3000, seed=9)


def training_features(events: list[Transaction]) -> np.ndarray:
    return compute_features(TransactionBatch.from_transactions(events))


@pytest.mark.parametrize("wire_format", ["json", "avro"])
def test_training_and_serving_paths_give_identical_vectors(
    settings: Settings, wire_format: str
) -> None:
    events = generated(3000) + ODD_EVENTS
    registry = schema_registry(settings)
    codec: TransactionCodec = (
        JsonCodec() if wire_format == "json" else avro_transactions(settings, registry)
    )
    decoder = transaction_decoder(settings, registry)
    served = [decoder.decode(codec.encode(event)) for event in events]
    assert served == events
    expected, actual = training_features(events), training_features(served)
    assert np.isnan(expected).any(), "the check must cover NaN (unknown category) codes"
    assert np.array_equal(expected, actual, equal_nan=True)


def test_matrix_shape_type_and_names() -> None:
    events = generated(100)
    matrix = training_features(events)
    assert matrix.shape == (len(events), len(FEATURE_NAMES))
    assert matrix.dtype == np.float64
    assert matrix.flags.c_contiguous
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert set(CATEGORICAL_FEATURES) <= set(FEATURE_NAMES)
    assert np.isfinite(
        np.delete(matrix, [FEATURE_NAMES.index(n) for n in CATEGORICAL_FEATURES], 1)
    ).all()


def test_known_values() -> None:
    # 2026-01-01 was a Thursday; 03:00 UTC is night
    event = Transaction("e", "c", "m", "fuel", 12.34, "EUR", "atm", "FR", "DE", 1_767_236_400_000)
    row = dict(zip(FEATURE_NAMES, training_features([event])[0], strict=True))
    assert row["amount"] == 12.34
    assert row["log_amount"] == pytest.approx(np.log1p(12.34))
    assert row["amount_cents"] == 34.0
    assert row["hour_of_day"] == 3.0
    assert row["day_of_week"] == 3.0
    assert row["is_night"] == 1.0
    assert row["channel"] == 2.0
    assert row["cross_border"] == 1.0
    assert row["merchant_category"] == 2.0


def test_empty_batch() -> None:
    assert training_features([]).shape == (0, len(FEATURE_NAMES))


@settings(deadline=None, max_examples=30)
@given(st.lists(st.integers(0, 2999), min_size=1, max_size=40))
def test_rows_do_not_depend_on_the_rest_of_the_batch(indices: list[int]) -> None:
    """Feature set fs1 is stateless: a batch's rows equal the rows of one-event batches."""
    events = [POOL[i] for i in indices]
    together = training_features(events)
    alone = np.vstack([training_features([e]) for e in events])
    assert np.array_equal(together, alone, equal_nan=True)
