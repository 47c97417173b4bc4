"""The label-free estimate (CBPE): calibration, expected metrics, and the interval's coverage."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from models.estimation import (
    CONFIDENCE,
    Estimator,
    expected_metrics,
    pool_adjacent_violators,
)
from models.evaluation import precision_recall_f1, roc_auc

THRESHOLD = 0.5


def _isotonic_brute_force(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The min-max formula: fit_i = max over j <= i of min over k >= i of mean(values[j..k])."""
    n = len(values)

    def mean(j: int, k: int) -> float:
        return float(np.average(values[j : k + 1], weights=weights[j : k + 1]))

    return np.array(
        [max(min(mean(j, k) for k in range(i, n)) for j in range(i + 1)) for i in range(n)]
    )


@pytest.mark.parametrize("seed", range(20))
def test_pool_adjacent_violators_matches_the_min_max_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values, weights = rng.random(9), rng.integers(1, 5, 9).astype(float)
    np.testing.assert_allclose(
        pool_adjacent_violators(values, weights), _isotonic_brute_force(values, weights)
    )


def test_expected_metrics_equal_the_exact_expectation_over_every_labelling() -> None:
    """Against all 2^n labellings: expected confusion counts, and the expected AUC as expected
    correctly ordered pairs over expected pairs (tied scores count half)."""
    rng = np.random.default_rng(3)
    p = rng.random(10)
    scores = np.round(rng.random(10), 1)  # ties on purpose
    expected = {"tp": 0.0, "fp": 0.0, "fn": 0.0, "ordered": 0.0, "pairs": 0.0}
    for bits in itertools.product([False, True], repeat=len(p)):
        y = np.array(bits)
        weight = float(np.prod(np.where(y, p, 1 - p)))
        flagged = scores >= THRESHOLD
        expected["tp"] += weight * (flagged & y).sum()
        expected["fp"] += weight * (flagged & ~y).sum()
        expected["fn"] += weight * (~flagged & y).sum()
        diff = scores[y][:, None] - scores[~y][None, :]
        expected["ordered"] += weight * ((diff > 0).sum() + 0.5 * (diff == 0).sum())
        expected["pairs"] += weight * y.sum() * (~y).sum()
    tp, fp, fn = expected["tp"], expected["fp"], expected["fn"]
    assert expected_metrics(p, scores, scores >= THRESHOLD) == pytest.approx(
        {
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "roc_auc": expected["ordered"] / expected["pairs"],
        }
    )


def _true_probability(scores: np.ndarray) -> np.ndarray:
    """P(fraud | score) of the simulation: monotone, miscalibrated (the raw score is not it)."""
    return np.asarray(scores**3 * 0.6)


def _simulated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    scores = rng.beta(1.0, 6.0, n)
    return scores, rng.random(n) < _true_probability(scores)


@pytest.fixture(scope="module")
def estimator() -> Estimator:
    scores, labels = _simulated(np.random.default_rng(1000), 60_000)
    return Estimator.fit(scores, labels, scores >= THRESHOLD, seed=1)


def test_calibration_recovers_the_probability(estimator: Estimator) -> None:
    grid = np.linspace(0.05, 0.6, 12)
    np.testing.assert_allclose(estimator.calibration(grid), _true_probability(grid), atol=0.05)
    assert np.all(np.diff(estimator.calibration(np.linspace(0, 1, 200))) >= 0)


def _coverage(estimator: Estimator, probability_shift: float) -> dict[str, float]:
    """Share of 40 simulated windows (labels drawn from the true probability, raised by
    ``probability_shift`` for a concept drift) whose interval covers the realised figure."""
    hits: dict[str, list[bool]] = {}
    errors = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        scores = rng.beta(1.0, 6.0, 8_000)
        labels = rng.random(len(scores)) < _true_probability(scores) + probability_shift
        realised = {
            **precision_recall_f1(labels, scores, THRESHOLD),
            "roc_auc": roc_auc(labels, scores),
        }
        estimate = estimator.estimate(scores, scores >= THRESHOLD, draws=100, seed=seed)
        for name, interval in estimate.items():
            hits.setdefault(name, []).append(interval.covers(realised[name]))
        errors.append(estimate["roc_auc"].estimate - realised["roc_auc"])
    result = {name: float(np.mean(h)) for name, h in hits.items()}
    # unbiased: the mean error is small against the spread of the realised AUC
    result["auc_bias"] = float(np.mean(errors))
    return result


def test_interval_covers_the_realised_figures_when_the_concept_holds(
    estimator: Estimator,
) -> None:
    coverage = _coverage(estimator, 0.0)
    for name in ("precision", "recall", "f1", "roc_auc"):
        assert coverage[name] >= CONFIDENCE - 0.1, (name, coverage)
    assert abs(coverage["auc_bias"]) < 0.005, coverage


def test_estimate_goes_wrong_when_the_concept_moves(estimator: Estimator) -> None:
    """A concept drift (every event 2 points likelier to be fraud whatever its score: frauds
    the model scores low) is not in the scores: the intervals stop covering the realised recall
    and ROC AUC."""
    coverage = _coverage(estimator, 0.02)
    assert coverage["recall"] < 0.5, coverage
    assert coverage["roc_auc"] < 0.5, coverage


def _clustered(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events in clusters of 25 (a card's, a terminal's) whose scores lie close together; each
    cluster's events are fraud with the true probability times 0 or 2 (an episode or none), so
    P(fraud | score) is unchanged but labels are not independent given the score."""
    cluster = np.arange(n) // 25
    level = rng.beta(1.0, 6.0, cluster[-1] + 1)[cluster]
    scores = np.clip(level + rng.normal(0.0, 0.02, n), 0.0, 1.0)
    episode = rng.integers(0, 2, cluster[-1] + 1)[cluster] * 2.0
    return scores, rng.random(n) < _true_probability(scores) * episode, cluster


@pytest.mark.parametrize("clustered", [True, False])
def test_clusters_widen_the_interval_to_cover_clustered_labels(clustered: bool) -> None:
    """With the reference's clusters the interval covers the realised ROC AUC and recall of
    windows with clustered labels at about the nominal rate; taken as independent, it does not."""
    scores, labels, cluster = _clustered(np.random.default_rng(2000), 20_000)
    estimator = Estimator.fit(
        scores, labels, scores >= THRESHOLD, clusters=[cluster] if clustered else [], seed=1
    )
    hits = {"roc_auc": 0, "recall": 0}
    for seed in range(30):
        window, truth, _ = _clustered(np.random.default_rng(seed), 8_000)
        estimate = estimator.estimate(window, window >= THRESHOLD, draws=100, seed=seed)
        realised = {
            "roc_auc": roc_auc(truth, window),
            "recall": precision_recall_f1(truth, window, THRESHOLD)["recall"],
        }
        for name in hits:
            hits[name] += estimate[name].covers(realised[name])
    coverage = {name: hit / 30 for name, hit in hits.items()}
    if clustered:
        assert min(coverage.values()) >= CONFIDENCE - 0.1, coverage
    else:
        assert min(coverage.values()) < CONFIDENCE - 0.2, coverage
