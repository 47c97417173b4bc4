"""The online learner's model: a River classifier over the serving feature vector.

It learns one labelled event at a time (``learn``) and scores batches (``predict``), on the
feature matrix the champion scored (columns in ``feature_names`` order; a missing value, NaN,
counts as 0 for River). The kinds are the ones ``stream-app bench online`` compares
(``docs/online-learner.md``). The learner saves it with its checkpoint
(:mod:`stream_app.online.checkpoint`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from river import compose, forest, linear_model, optim, preprocessing, tree

from stream_app.errors import ModelError
from stream_app.events import FloatArray


def _logistic() -> Any:
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.01)),
    )


def _hoeffding() -> Any:
    return tree.HoeffdingAdaptiveTreeClassifier(grace_period=200, seed=1)


def _forest() -> Any:
    return forest.ARFClassifier(n_models=10, seed=1)


#: the River classifiers compared: name → a fresh model
KINDS: dict[str, Callable[[], Any]] = {
    "logistic": _logistic,
    "hoeffding": _hoeffding,
    "forest": _forest,
}


class OnlineModel:
    """A River classifier with its feature names; scores are P(fraud)."""

    def __init__(self, kind: str, feature_names: Sequence[str]) -> None:
        if kind not in KINDS:
            raise ModelError(f"online model kind {kind!r}: one of {', '.join(KINDS)}")
        self.kind = kind
        self.feature_names = tuple(feature_names)
        self._model = KINDS[kind]()

    @property
    def version(self) -> str:
        """The model version its shadow scores carry."""
        return f"online-{self.kind}"

    def _rows(self, features: FloatArray) -> list[dict[str, float]]:
        values = np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0).tolist()
        return [dict(zip(self.feature_names, row, strict=True)) for row in values]

    def predict(self, features: FloatArray) -> FloatArray:
        """P(fraud) of each row (0.0 for every row before the model saw a fraud)."""
        scores = [self._model.predict_proba_one(x).get(True, 0.0) for x in self._rows(features)]
        return np.asarray(scores, dtype=np.float64)

    def learn(self, features: FloatArray, labels: Sequence[bool]) -> None:
        """Learn each row with its label, in order."""
        for x, y in zip(self._rows(features), labels, strict=True):
            self._model.learn_one(x, bool(y))
