"""Training on a tiny configuration registers a usable champion."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from models.loader import load_model
from models.registry import CHAMPION, FileModelStore, ModelMetadata
from models.runtime import ModelRuntime
from stream_app.features import FEATURE_NAMES, FEATURE_SET_VERSION


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


def test_the_runtime_answers_through_its_interface(
    trained_store: tuple[FileModelStore, ModelMetadata],
) -> None:
    """Version, threshold, feature set, scores and contributions, without reaching into LightGBM:
    the contributions of a row add up to its score (logit), one column per feature plus the bias."""
    store, metadata = trained_store
    runtime: ModelRuntime = load_model(store)
    assert (runtime.version, runtime.threshold) == ("1", metadata.threshold)
    assert runtime.feature_set == metadata.feature_set_version == FEATURE_SET_VERSION
    features = np.random.default_rng(1).uniform(0, 100, size=(20, len(FEATURE_NAMES)))
    contributions = runtime.contributions(features)
    assert contributions.shape == (20, len(FEATURE_NAMES) + 1)
    logits = contributions.sum(axis=1)
    assert np.allclose(1 / (1 + np.exp(-logits)), runtime.predict(features))


def test_gain_shares_follow_the_booster_and_add_up_to_one(
    trained_store: tuple[FileModelStore, ModelMetadata],
) -> None:
    store, _ = trained_store
    shares = load_model(store).gain_shares()
    gains = lgb.Booster(model_str=store.load_text("1")).feature_importance(importance_type="gain")
    assert shares.shape == (len(FEATURE_NAMES),)
    assert shares.sum() == pytest.approx(1.0)
    assert np.allclose(shares * gains.sum(), gains)


def test_the_default_model_keeps_its_trees_small(
    trained_store: tuple[FileModelStore, ModelMetadata],
) -> None:
    """15 leaves per tree at most (docs/benchmarks.md, "Where the worker's time goes"): LightGBM's
    31 grew trees of depth 18 on this data, for no better held-out quality and several times the
    TreeSHAP cost of an alert's contributions."""
    store, metadata = trained_store
    text = store.load_text(metadata.version)
    leaves = [
        int(line.split("=", 1)[1]) for line in text.splitlines() if line.startswith("num_leaves=")
    ]
    assert len(leaves) == metadata.num_trees
    assert max(leaves) == 15
