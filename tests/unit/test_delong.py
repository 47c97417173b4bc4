"""DeLong's test (models/delong.py) against the pairwise definition computed by brute force, and
its p-value's calibration under the null hypothesis."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.delong import compare_aucs, placements, precision_at_k
from models.evaluation import roc_auc


def brute_force(labels, first, second):
    """AUCs and the variance of their difference from the O(m·n) pairwise kernel: each fraud's
    and each legitimate event's placement, then the sample covariances (DeLong et al. 1988)."""
    y = np.asarray(labels, dtype=bool)
    v10, v01 = [], []
    for scores in (np.asarray(first, float), np.asarray(second, float)):
        pos, neg = scores[y], scores[~y]
        kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        v10.append(kernel.mean(axis=1))
        v01.append(kernel.mean(axis=0))
    m, n = int(y.sum()), int((~y).sum())
    s = np.cov(np.vstack(v10)) / m + np.cov(np.vstack(v01)) / n
    return v10[0].mean(), v10[1].mean(), s[0, 0] + s[1, 1] - 2 * s[0, 1]


@pytest.mark.parametrize("seed", range(5))
def test_the_midrank_computation_equals_the_pairwise_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    y = rng.random(n) < 0.2
    # rounded: many ties, within and across classes
    first = np.round(rng.normal(y * 1.0, 1.0), 1)
    second = np.round(first + rng.normal(y * 0.5, 0.8), 1)
    champion_auc, candidate_auc, variance = brute_force(y, first, second)
    result = compare_aucs(y, first, second, margin=0.01)
    assert result.champion_auc == pytest.approx(champion_auc, abs=1e-12)
    assert result.candidate_auc == pytest.approx(candidate_auc, abs=1e-12)
    assert result.champion_auc == pytest.approx(roc_auc(y, first), abs=1e-12)
    assert result.variance == pytest.approx(variance, rel=1e-9)
    z = (candidate_auc - champion_auc - 0.01) / math.sqrt(variance)
    assert result.statistic == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), rel=1e-9)


def test_placements_average_to_the_auc() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.3
    scores = rng.normal(y * 0.7, 1.0)
    v10, v01 = placements(y, scores)
    assert v10.mean() == pytest.approx(roc_auc(y, scores), abs=1e-12)
    assert v01.mean() == pytest.approx(roc_auc(y, scores), abs=1e-12)


def test_under_the_null_the_test_rejects_at_about_its_level() -> None:
    """Two models of equal quality (independent noise on one signal): at alpha = 0.05 a one-sided
    test rejects ~5 % of the time, not far more (a variance too small) nor never."""
    rng = np.random.default_rng(11)
    rejections, runs = 0, 400
    for _ in range(runs):
        y = rng.random(600) < 0.15
        signal = rng.normal(y * 1.0, 1.0)
        first, second = signal + rng.normal(0, 1, 600), signal + rng.normal(0, 1, 600)
        rejections += compare_aucs(y, first, second).p_value < 0.05
    assert 0.02 <= rejections / runs <= 0.09, rejections


def test_a_clearly_better_model_is_supported_and_a_margin_can_withhold_it() -> None:
    rng = np.random.default_rng(5)
    y = rng.random(2000) < 0.1
    weak, strong = rng.normal(y * 0.5, 1.0), rng.normal(y * 1.5, 1.0)
    better = compare_aucs(y, weak, strong)
    assert better.candidate_auc > better.champion_auc + 0.1
    assert better.p_value < 1e-6
    gap = better.candidate_auc - better.champion_auc
    assert compare_aucs(y, weak, strong, margin=gap + 0.05).p_value > 0.5
    assert compare_aucs(y, strong, weak).p_value > 0.999  # the worse candidate


def test_identical_models_give_no_support() -> None:
    y = np.array([1, 0, 1, 0, 0, 1])
    scores = np.array([0.9, 0.1, 0.4, 0.5, 0.2, 0.8])
    result = compare_aucs(y, scores, scores)
    assert result.variance == 0.0 and result.p_value == 1.0 and math.isnan(result.statistic)


def test_too_few_events_of_a_class_is_an_error() -> None:
    with pytest.raises(ValueError, match="two events of each class"):
        compare_aucs([1, 0, 0], [0.5, 0.2, 0.1], [0.4, 0.3, 0.2])


def test_precision_at_k_counts_frauds_among_the_top_scores() -> None:
    y = [1, 0, 1, 1, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.1, 0.2, 0.3]
    assert precision_at_k(y, scores, 1) == 1.0
    assert precision_at_k(y, scores, 3) == pytest.approx(2 / 3)
    assert precision_at_k(y, scores, 100) == 0.5
