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
reference, so it holds both the window's sampling error and the calibration's. Those draws take
labels as independent given the score; frauds come in episodes (a compromised card, a
compromised terminal), so the interval is widened by the square root of each metric's design
effect, measured on the reference by bootstraps that draw whole cards and terminals
(:func:`design_effects`). It rests on the estimate's one assumption, that P(fraud | score) is
the reference's: a concept drift (a new fraud pattern the model scores low) breaks it, and the
estimate with it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
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
    probabilities: npt.ArrayLike, scores: npt.ArrayLike, flagged: npt.ArrayLike
) -> dict[str, float]:
    """Precision, recall and F1 of the ``flagged`` events (those the model declined: its score
    reached the threshold) from the expected confusion matrix, and the expected ROC AUC
    (expected correctly ordered pairs over expected pairs; ties count half), if each event is
    fraud with its probability.

    >>> expected_metrics([0.0, 0.5, 1.0], [0.1, 0.2, 0.3], [False, False, True])
    {'precision': 1.0, 'recall': 0.6666666666666666, 'f1': 0.8, 'roc_auc': 1.0}
    """
    p = np.asarray(probabilities, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    f = np.asarray(flagged, dtype=bool)
    true_pos, false_pos, false_neg = p[f].sum(), (1 - p[f]).sum(), p[~f].sum()
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


def design_effects(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    flagged: npt.ArrayLike,
    clusters: Sequence[npt.ArrayLike],
    *,
    resamples: int = 200,
    seed: int = 0,
) -> FloatArray:
    """Per metric of :data:`METRICS`, how many times its realised figure's variance grows
    because events come in ``clusters`` (each an array of cluster ids: a card's, a terminal's
    events) rather than one by one: the variance over bootstraps that draw whole clusters over
    the variance over bootstraps that draw events (Kish's design effect). Several clusterings
    combine as in Cameron, Gelbach and Miller's multiway clustering, the sum over each
    clustering minus that over their intersections; at least 1.

    Every bootstrap draws its Poisson weights from the same seed, so events as their own
    clusters give exactly 1:

    >>> rng = np.random.default_rng(0)
    >>> s, y = rng.random(300), rng.random(300) < 0.3
    >>> design_effects(s, y, s > 0.5, [np.arange(300)], resamples=20).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    s = np.asarray(scores, dtype=np.float64)
    y, f = np.asarray(labels, dtype=bool), np.asarray(flagged, dtype=np.float64)
    codes = [np.unique(np.asarray(c), return_inverse=True)[1] for c in clusters]

    def variance(groups: npt.NDArray[np.intp]) -> FloatArray:
        rng, size = np.random.default_rng(seed), int(groups.max()) + 1
        figures = []
        for _ in range(resamples):
            rows = np.repeat(np.arange(len(s)), rng.poisson(1.0, size)[groups])
            figures.append(_realised(y[rows], average_ranks(s[rows]), f[rows]))
        return np.asarray(np.nanvar(np.array(figures), axis=0))

    clustered = np.zeros(len(METRICS))
    for size in range(1, len(codes) + 1):
        for subset in itertools.combinations(codes, size):
            intersection = np.unique(np.stack(subset), axis=1, return_inverse=True)[1]
            clustered += (-1) ** (size + 1) * variance(intersection.ravel())
    return np.maximum(clustered / variance(np.arange(len(s))), 1.0)


@dataclass(frozen=True)
class Estimator:
    """A calibration fitted on a reference window, refits on bootstraps of it, and the design
    effects (:func:`design_effects`) that widen the interval when events come in clusters."""

    calibration: Calibration
    resampled: tuple[Calibration, ...]
    design_effects: FloatArray

    @classmethod
    def fit(
        cls,
        scores: npt.ArrayLike,
        labels: npt.ArrayLike,
        flagged: npt.ArrayLike,
        *,
        clusters: Sequence[npt.ArrayLike] = (),
        resamples: int = 20,
        seed: int = 0,
    ) -> Estimator:
        """Fit on the reference window's ``scores``, ``labels`` and which were ``flagged``;
        without ``clusters`` the labels are taken as independent given the score."""
        rng = np.random.default_rng(seed)
        s = np.asarray(scores, dtype=np.float64)
        resampled = tuple(
            Calibration.fit(s, labels, rng.poisson(1.0, len(s))) for _ in range(resamples)
        )
        effects = (
            design_effects(s, labels, flagged, clusters, seed=seed)
            if clusters
            else np.ones(len(METRICS))
        )
        return cls(Calibration.fit(s, labels), resampled, effects)

    def estimate(
        self, scores: npt.ArrayLike, flagged: npt.ArrayLike, *, draws: int = 200, seed: int = 0
    ) -> dict[str, Interval]:
        """Each of :data:`METRICS` for a window of ``scores`` and which of them were ``flagged``,
        without their labels."""
        s = np.asarray(scores, dtype=np.float64)
        point = expected_metrics(self.calibration(s), s, flagged)
        rng = np.random.default_rng(seed)
        ranks, flags = average_ranks(s), np.asarray(flagged, dtype=np.float64)
        probabilities = [calibration(s) for calibration in self.resampled]
        realised = np.array(
            [
                _realised(rng.random(len(s)) < probabilities[k % len(probabilities)], ranks, flags)
                for k in range(draws)
            ]
        )
        tail = 100 * (1 - CONFIDENCE) / 2
        low, high = np.nanpercentile(realised, [tail, 100 - tail], axis=0)
        widen = np.sqrt(self.design_effects)
        return {
            name: Interval(
                point[name],
                float(np.clip(point[name] - widen[i] * (point[name] - low[i]), 0.0, 1.0)),
                float(np.clip(point[name] + widen[i] * (high[i] - point[name]), 0.0, 1.0)),
            )
            for i, name in enumerate(METRICS)
        }


def _realised(fraud: npt.NDArray[np.bool_], ranks: FloatArray, flagged: FloatArray) -> list[float]:
    """The :data:`METRICS` one draw of labels gives (the scores as ``ranks`` and ``flagged``)."""
    return [*precision_recall_f1(fraud, flagged, 1.0).values(), rank_auc(fraud, ranks)]
