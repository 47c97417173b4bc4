"""Training on a tiny configuration registers a usable champion."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from models.registry import CHAMPION, FileModelStore, ModelMetadata
from stream_app.features import FEATURE_NAMES, FEATURE_SET_VERSION
from stream_app.scoring.model import load_model


def test_first_training_is_version_1_and_champion(
    trained_store: tuple[FileModelStore, ModelMetadata],
) -> None:
    store, metadata = trained_store
    assert metadata.version == "1"
    assert store.aliases() == {CHAMPION: "1"}
    assert [m.version for m in store.versions()] == ["1"]
    assert metadata.evaluation["auc"] > 0.8, metadata.evaluation
    assert metadata.feature_set_version == FEATURE_SET_VERSION
    assert tuple(metadata.feature_names) == FEATURE_NAMES
    assert metadata.num_trees == 20
    assert metadata.parent_version is None
    assert 0.0 < metadata.threshold < 1.0
    assert metadata.training["rows"] == 4000  # 5k events, the latest 20 % held out


def test_registered_text_is_the_model_that_scores(
    trained_store: tuple[FileModelStore, ModelMetadata],
) -> None:
    store, metadata = trained_store
    loaded = load_model(store)
    assert (loaded.version, loaded.threshold) == ("1", metadata.threshold)
    booster = lgb.Booster(model_str=store.load_text("1"))
    features = np.random.default_rng(0).uniform(0, 100, size=(50, len(FEATURE_NAMES)))
    assert np.array_equal(loaded.predict(features), booster.predict(features, num_threads=1))
    assert ((loaded.predict(features) >= 0) & (loaded.predict(features) <= 1)).all()
