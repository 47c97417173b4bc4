"""Model runtimes: a model ready to score, behind a small interface whatever library runs it.

In the style of MLServer's runtimes: callers know a runtime's version, decision threshold and
feature set, ask it for scores and for per-feature contributions, and never reach into the
library object behind it. LightGBM is the one runtime today; a River model can be scored beside
it by implementing :class:`ModelRuntime`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import lightgbm as lgb
import numpy as np

from models.direct_predict import DirectPredictor
from stream_app.events import FloatArray


class ModelRuntime(Protocol):
    """One model version ready to score feature matrices (columns in the feature set's order)."""

    @property
    def version(self) -> str: ...
    @property
    def threshold(self) -> float:
        """Scores at or above it are declined."""

    @property
    def feature_set(self) -> str:
        """The feature-set version its columns follow (``FEATURE_SET_VERSION``)."""

    def predict(self, features: FloatArray) -> FloatArray:
        """Fraud probability per row."""

    def contributions(self, features: FloatArray) -> FloatArray:
        """Per row, each feature's contribution to the raw score, then the bias: shape
        ``(rows, features + 1)``."""


@dataclass(frozen=True)
class LightGBMRuntime:
    """A LightGBM booster; one thread per call, the worker scales by processes. Scores go
    through a :class:`DirectPredictor` (arguments prepared once), contributions through
    ``Booster.predict``."""

    version: str
    threshold: float
    feature_set: str
    _booster: lgb.Booster
    _scorer: DirectPredictor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_scorer", DirectPredictor(self._booster))

    def predict(self, features: FloatArray) -> FloatArray:
        return self._scorer.predict(features)

    def contributions(self, features: FloatArray) -> FloatArray:
        """TreeSHAP, ~1 ms per row on deep trees: call it for the rows that need it only."""
        values: FloatArray = np.asarray(
            self._booster.predict(features, pred_contrib=True, num_threads=1), dtype=np.float64
        )
        return values

    def gain_shares(self) -> FloatArray:
        """Each feature's share of the total split gain (zeros for a model without splits)."""
        gains = np.asarray(self._booster.feature_importance(importance_type="gain"), np.float64)
        total = float(gains.sum()) or 1.0
        shares: FloatArray = gains / total
        return shares
