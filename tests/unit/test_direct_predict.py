"""The direct call scores exactly as ``Booster.predict`` does, at any batch size."""

from __future__ import annotations

import itertools

import lightgbm as lgb
import numpy as np
import pytest

from models.direct_predict import DirectPredictor
from models.fit import training_features
from models.registry import FileModelStore, ModelMetadata
from stream_app.devtools.generator import TransactionGenerator


@pytest.fixture(scope="module")
def booster(trained_store: tuple[FileModelStore, ModelMetadata]) -> lgb.Booster:
    store, metadata = trained_store
    return lgb.Booster(model_str=store.load_text(metadata.version))


@pytest.mark.parametrize("rows", [1, 7, 50, 600])
def test_scores_are_bit_identical_to_the_booster(booster: lgb.Booster, rows: int) -> None:
    """Served features (NaN where a card has no previous event or a category is unknown) and a
    column-major copy of them."""
    events = [g.event for g in itertools.islice(TransactionGenerator(seed=5), rows)]
    features = training_features(events)
    features[::3, 7] = np.nan  # an unknown merchant category
    assert np.isnan(features).any()
    expected = booster.predict(features, num_threads=1)
    predictor = DirectPredictor(booster)
    assert np.array_equal(predictor.predict(features), expected)
    assert np.array_equal(predictor.predict(np.asfortranarray(features)), expected)


def test_a_matrix_of_another_width_is_refused(booster: lgb.Booster) -> None:
    predictor = DirectPredictor(booster)
    with pytest.raises(ValueError, match="the model has"):
        predictor.predict(np.zeros((3, predictor.features + 1)))
    assert predictor.predict(np.zeros((0, predictor.features))).shape == (0,)
