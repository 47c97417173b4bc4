"""Features: training and serving compute the same vectors, whatever the wire format.

Feature set fs2 = the stateless features of the event, then the per-card velocity features that
training replays over the history (``replay_velocity_features``). That served batches through the
scoring pipeline give the replayed vectors is checked in ``test_scoring_pipeline.py``.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.fit import training_features
from stream_app.codecs.base import TransactionCodec
from stream_app.codecs.factory import avro_transactions, schema_registry, transaction_decoder
from stream_app.codecs.json import JsonCodec
from stream_app.devtools.generator import TransactionGenerator
from stream_app.events import Transaction, TransactionBatch
from stream_app.features import (
    CATEGORICAL_FEATURES,
    EVENT_FEATURES,
    FEATURE_NAMES,
    compute_features,
)
from stream_app.settings import Settings
from stream_app.state import VELOCITY_FEATURES, replay_velocity_features
from tests.unit.support import YESTERDAY_MS

#: known and unknown categories, so that NaN codes are part of what must match
ODD_EVENTS = [
    Transaction("odd-1", "c1", "m1", "teleportation", 1.0, "EUR", "pigeon", "FR", "FR", 1),
    Transaction("odd-2", "c2", "m2", "", 99_999.99, "", "", "", "XX", 2**62),
]
CATEGORICAL_COLUMNS = [FEATURE_NAMES.index(n) for n in CATEGORICAL_FEATURES]
#: velocity features that are NaN on the first event of a card (no previous event, no mean)
FIRST_EVENT_NAN = ("seconds_since_previous", "amount_to_mean")


def generated(count: int, seed: int = 5) -> list[Transaction]:
    return [g.event for g in itertools.islice(TransactionGenerator(seed=seed), count)]


POOL = generated(3000, seed=9)


def velocity(events: list[Transaction]) -> np.ndarray:
    batch = TransactionBatch.from_transactions(events)
    return replay_velocity_features(
        batch.card_id, batch.merchant_id, batch.amount, batch.event_time
    )


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
    assert np.isnan(expected[:, CATEGORICAL_COLUMNS]).any(), (
        "the check must cover NaN (unknown category) codes"
    )
    assert expected[:, FEATURE_NAMES.index("count_24h")].max() > 5, (
        "the check must cover cards with some history"
    )
    assert np.array_equal(expected, actual, equal_nan=True)


def test_matrix_shape_type_and_names() -> None:
    events = generated(400)
    matrix = training_features(events)
    assert matrix.shape == (len(events), len(FEATURE_NAMES))
    assert matrix.dtype == np.float64
    assert matrix.flags.c_contiguous
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert FEATURE_NAMES == EVENT_FEATURES + VELOCITY_FEATURES
    assert set(CATEGORICAL_FEATURES) <= set(EVENT_FEATURES)
    may_be_nan = [FEATURE_NAMES.index(n) for n in (*CATEGORICAL_FEATURES, *FIRST_EVENT_NAN)]
    assert np.isfinite(np.delete(matrix, may_be_nan, 1)).all()
    # generated events have known categories; the two velocity features are NaN exactly on the
    # first event of each card
    assert np.isfinite(matrix[:, CATEGORICAL_COLUMNS]).all()
    cards = [e.card_id for e in events]
    first_of_card = np.array([cards.index(card) == i for i, card in enumerate(cards)])
    assert first_of_card.sum() < len(events), "the check must cover repeat cards"
    for name in FIRST_EVENT_NAN:
        assert np.array_equal(np.isnan(matrix[:, FEATURE_NAMES.index(name)]), first_of_card)


def test_known_values() -> None:
    t = YESTERDAY_MS + 3 * 3_600_000  # yesterday 03:00 UTC: night, whatever today is
    weekday = datetime.fromtimestamp(t / 1000, UTC).weekday()  # Monday = 0, as day_of_week
    event = Transaction("e", "c", "m", "fuel", 12.34, "EUR", "atm", "FR", "DE", t)
    later = Transaction("e2", "c", "m2", "grocery", 37.66, "EUR", "pos", "FR", "FR", t + 30_000)
    first_row, second_row = (
        dict(zip(FEATURE_NAMES, row, strict=True)) for row in training_features([event, later])
    )
    assert first_row["amount"] == 12.34
    assert first_row["log_amount"] == pytest.approx(np.log1p(12.34))
    assert first_row["amount_cents"] == 34.0
    assert first_row["hour_of_day"] == 3.0
    assert first_row["day_of_week"] == weekday
    assert first_row["is_night"] == 1.0
    assert first_row["channel"] == 2.0
    assert first_row["cross_border"] == 1.0
    assert first_row["merchant_category"] == 2.0
    # the card's first event: only itself in every window
    counts_and_sums = ("count_1m", "sum_1m", "count_1h", "sum_1h", "count_24h", "sum_24h")
    assert [first_row[n] for n in counts_and_sums] == [1.0, 12.34] * 3
    assert first_row["distinct_merchants_1h"] == 1.0
    assert np.isnan(first_row["seconds_since_previous"])
    assert np.isnan(first_row["amount_to_mean"])
    # its second event, 30 s later at another merchant
    assert second_row["count_1m"] == second_row["count_1h"] == second_row["count_24h"] == 2.0
    assert second_row["sum_1m"] == second_row["sum_1h"] == second_row["sum_24h"] == 50.0
    assert second_row["distinct_merchants_1h"] == 2.0
    assert second_row["seconds_since_previous"] == 30.0
    assert second_row["amount_to_mean"] == pytest.approx(37.66 / 12.34)
    assert second_row["cross_border"] == 0.0


def test_empty_batch() -> None:
    assert training_features([]).shape == (0, len(FEATURE_NAMES))


def test_velocity_of_the_wrong_shape_is_refused() -> None:
    events = generated(3)
    batch = TransactionBatch.from_transactions(events)
    for shape in [(2, len(VELOCITY_FEATURES)), (3, len(VELOCITY_FEATURES) - 1), (3,)]:
        with pytest.raises(ValueError, match="velocity features of shape"):
            compute_features(batch, np.zeros(shape))


@settings(deadline=None, max_examples=30)
@given(st.lists(st.integers(0, 2999), min_size=1, max_size=40))
def test_event_features_do_not_depend_on_the_rest_of_the_batch(indices: list[int]) -> None:
    """The event features (fs1) are stateless: a batch's rows equal the rows of one-event
    batches; the velocity columns are exactly the velocity features given."""
    events = [POOL[i] for i in indices]
    batch_velocity = velocity(events)
    together = training_features(events)
    alone = np.vstack([training_features([e]) for e in events])
    width = len(EVENT_FEATURES)
    assert np.array_equal(together[:, :width], alone[:, :width], equal_nan=True)
    assert np.array_equal(together[:, width:], batch_velocity, equal_nan=True)
