"""A champion model loaded for scoring: the booster plus what the worker must know about it."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from models.registry import CHAMPION, ModelStore
from stream_app.errors import ModelError
from stream_app.events import FloatArray
from stream_app.features import FEATURE_NAMES, FEATURE_SET_VERSION


@dataclass(frozen=True)
class LoadedModel:
    """One model version ready to score feature matrices."""

    version: str
    threshold: float
    booster: lgb.Booster

    def predict(self, features: FloatArray) -> FloatArray:
        """Fraud probability per row; one thread, the worker scales by processes."""
        scores: FloatArray = np.asarray(
            self.booster.predict(features, num_threads=1), dtype=np.float64
        )
        return scores


def load_model(store: ModelStore, alias_or_version: str = CHAMPION) -> LoadedModel:
    """Load a version (checksum verified) and refuse one built for another feature set."""
    metadata = store.resolve(alias_or_version)
    if metadata.feature_set_version != FEATURE_SET_VERSION:
        raise ModelError(
            f"model {metadata.version} uses feature set {metadata.feature_set_version}, "
            f"this worker computes {FEATURE_SET_VERSION}"
        )
    if tuple(metadata.feature_names) != FEATURE_NAMES:
        raise ModelError(f"model {metadata.version} expects features {metadata.feature_names}")
    try:
        booster = lgb.Booster(model_str=store.load_text(metadata.version))
    except lgb.basic.LightGBMError as exc:
        raise ModelError(f"model {metadata.version} does not load: {exc}") from exc
    return LoadedModel(metadata.version, metadata.threshold, booster)
