"""Confidence-based performance estimation (CBPE, as NannyML does it in batch), in plain numpy.

While labels are missing, a window's precision, recall, F1 and ROC AUC are estimated from its
scores alone: a calibration fitted on a labelled reference window (not the training data) turns
each score into P(fraud); the expected confusion matrix at the threshold follows (expected true
positives = the sum of P(fraud) over flagged events, and so on), and the expected ROC AUC is the
expected share of (fraud, legitimate) pairs the scores order correctly.

The calibration is isotonic (pool adjacent violators over the reference's distinct scores,
interpolated linearly between them and clipped at the ends, as scikit-learn's
``IsotonicRegression``): it assumes only that P(fraud) grows with the score, where a binned
calibration would also need bins, too coarse among the few high scores where the frauds are or
too noisy elsewhere.

The interval (:data:`CONFIDENCE`) is that of the realised value: labels are drawn from the
calibrated probabilities, each draw with a calibration refitted on a Poisson bootstrap of the
reference, so it holds both the window's sampling error and the calibration's. It rests on the
estimate's one assumption, that P(fraud | score) is the reference's: a concept drift (a new
fraud pattern the model scores low) breaks it, and the estimate with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.evaluation import average_ranks, precision_recall_f1, rank_auc

FloatArray = npt.NDArray[np.float64]

#: coverage of the interval around each estimate
CONFIDENCE = 0.95
METRICS = ("precision", "recall", "f1", "roc_auc")


def pool_adjacent_violators(values: npt.ArrayLike, weights: npt.ArrayLike) -> FloatArray:
    """The non-decreasing sequence closest to ``values`` in weighted squared error.

    >>> pool_adjacent_violators([1.0, 3.0, 2.0, 4.0], [1.0, 1.0, 1.0, 1.0]).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    means: list[float] = []
    sizes: list[float] = []
    counts: list[int] = []
    for value, weight in zip(
        np.asarray(values, dtype=np.float64).tolist(),
        np.asarray(weights, dtype=np.float64).tolist(),
        strict=True,
    ):
        mean, size, count = value, weight, 1
        while means and means[-1] > mean:
            size_before = sizes.pop()
            mean = (means.pop() * size_before + mean * size) / (size_before + size)
            size += size_before
            count += counts.pop()
        means.append(mean)
        sizes.append(size)
        counts.append(count)
    return np.repeat(np.asarray(means), counts)


@dataclass(frozen=True)
class Calibration:
    """Score → P(fraud), isotonic, fitted on labelled scores."""

    knots: FloatArray
    rates: FloatArray

    @classmethod
    def fit(
        cls, scores: npt.ArrayLike, labels: npt.ArrayLike, weights: npt.ArrayLike | None = None
    ) -> Calibration:
        """Fit on ``scores`` and their 0/1 ``labels`` (rows weighted by ``weights``).

        >>> Calibration.fit([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1])([0.1, 0.25, 0.9]).tolist()
        [0.0, 0.5, 1.0]
        """
        s = np.asarray(scores, dtype=np.float64)
        w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
        knots, inverse = np.unique(s, return_inverse=True)
        total = np.bincount(inverse, w, len(knots))
        frauds = np.bincount(inverse, w * np.asarray(labels, dtype=np.float64), len(knots))
        kept = total > 0
        rates = pool_adjacent_violators(frauds[kept] / total[kept], total[kept])
        return cls(knots[kept], rates)

    def __call__(self, scores: npt.ArrayLike) -> FloatArray:
        return np.interp(np.asarray(scores, dtype=np.float64), self.knots, self.rates)


@dataclass(frozen=True)
class Interval:
    """An estimate and the :data:`CONFIDENCE` interval of the realised value."""

    estimate: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def expected_metrics(
    probabilities: npt.ArrayLike, scores: npt.ArrayLike, threshold: float
) -> dict[str, float]:
    """Precision, recall and F1 of ``score >= threshold`` from the expected confusion matrix, and
    the expected ROC AUC (expected correctly ordered pairs over expected pairs; ties count half),
    if each event is fraud with its probability.

    >>> expected_metrics([0.0, 0.5, 1.0], [0.1, 0.2, 0.3], 0.25)
    {'precision': 1.0, 'recall': 0.6666666666666666, 'f1': 0.8, 'roc_auc': 1.0}
    """
    p = np.asarray(probabilities, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    flagged = s >= threshold
    true_pos, false_pos, false_neg = p[flagged].sum(), (1 - p[flagged]).sum(), p[~flagged].sum()
    _, group = np.unique(s, return_inverse=True)
    legit_in_group = np.bincount(group, 1 - p)
    legit_below = np.cumsum(legit_in_group) - legit_in_group
    # pairs of distinct events only: an event is never its own legitimate counterpart
    ordered = (p * (legit_below[group] + 0.5 * (legit_in_group[group] - (1 - p)))).sum()
    pairs = p.sum() * (1 - p).sum() - (p * (1 - p)).sum()
    return {
        "precision": _ratio(true_pos, true_pos + false_pos),
        "recall": _ratio(true_pos, true_pos + false_neg),
        "f1": _ratio(2 * true_pos, 2 * true_pos + false_pos + false_neg),
        "roc_auc": _ratio(ordered, pairs, empty=float("nan")),
    }


def _ratio(numerator: float, denominator: float, empty: float = 0.0) -> float:
    return float(numerator / denominator) if denominator > 0 else empty


@dataclass(frozen=True)
class Estimator:
    """A calibration fitted on a reference window, and refits on bootstraps of it."""

    calibration: Calibration
    resampled: tuple[Calibration, ...]

    @classmethod
    def fit(
        cls, scores: npt.ArrayLike, labels: npt.ArrayLike, *, resamples: int = 20, seed: int = 0
    ) -> Estimator:
        """Fit on the reference window's ``scores`` and ``labels``."""
        rng = np.random.default_rng(seed)
        s = np.asarray(scores, dtype=np.float64)
        resampled = tuple(
            Calibration.fit(s, labels, rng.poisson(1.0, len(s))) for _ in range(resamples)
        )
        return cls(Calibration.fit(s, labels), resampled)

    def estimate(
        self, scores: npt.ArrayLike, threshold: float, *, draws: int = 200, seed: int = 0
    ) -> dict[str, Interval]:
        """Each of :data:`METRICS` for a window of ``scores``, without its labels."""
        s = np.asarray(scores, dtype=np.float64)
        point = expected_metrics(self.calibration(s), s, threshold)
        rng = np.random.default_rng(seed)
        ranks, flagged = average_ranks(s), (s >= threshold).astype(np.float64)
        probabilities = [calibration(s) for calibration in self.resampled]
        realised = np.array(
            [
                _realised(
                    rng.random(len(s)) < probabilities[k % len(probabilities)], ranks, flagged
                )
                for k in range(draws)
            ]
        )
        tail = 100 * (1 - CONFIDENCE) / 2
        low, high = np.nanpercentile(realised, [tail, 100 - tail], axis=0)
        return {
            name: Interval(point[name], float(low[i]), float(high[i]))
            for i, name in enumerate(METRICS)
        }


def _realised(fraud: npt.NDArray[np.bool_], ranks: FloatArray, flagged: FloatArray) -> list[float]:
    """The :data:`METRICS` one draw of labels gives (the scores as ``ranks`` and ``flagged``)."""
    return [*precision_recall_f1(fraud, flagged, 1.0).values(), rank_auc(fraud, ranks)]
