"""Evaluation metrics against brute force on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.evaluation import average_precision, best_f1_threshold, precision_recall_f1, roc_auc

HYPOTHESIS = settings(deadline=None, max_examples=50)

#: scores drawn from a few values (many ties) or anywhere in [0, 1]
scores = st.one_of(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), st.floats(0.0, 1.0))
samples = st.lists(st.tuples(st.booleans(), scores), min_size=1, max_size=60)


def brute_force_auc(labels: list[bool], values: list[float]) -> float:
    """P(score of a positive > score of a negative), ties counted half, over every pair."""
    positives = [s for y, s in zip(labels, values, strict=True) if y]
    negatives = [s for y, s in zip(labels, values, strict=True) if not y]
    if not positives or not negatives:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


@HYPOTHESIS
@given(samples)
def test_auc_equals_brute_force(sample: list[tuple[bool, float]]) -> None:
    labels, values = [y for y, _ in sample], [s for _, s in sample]
    expected = brute_force_auc(labels, values)
    actual = roc_auc(labels, values)
    if math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == pytest.approx(expected, abs=1e-12)


@HYPOTHESIS
@given(samples, st.floats(0.0, 1.0))
def test_precision_recall_f1_equal_brute_force(
    sample: list[tuple[bool, float]], threshold: float
) -> None:
    labels, values = [y for y, _ in sample], [s for _, s in sample]
    flagged = [s >= threshold for s in values]
    tp = sum(f and y for f, y in zip(flagged, labels, strict=True))
    precision = tp / sum(flagged) if any(flagged) else 0.0
    recall = tp / sum(labels) if any(labels) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    result = precision_recall_f1(labels, values, threshold)
    assert result == pytest.approx({"precision": precision, "recall": recall, "f1": f1})


@HYPOTHESIS
@given(samples)
def test_best_threshold_is_a_score_quantile_with_the_best_f1_of_its_grid(
    sample: list[tuple[bool, float]],
) -> None:
    labels, values = [y for y, _ in sample], np.array([s for _, s in sample])
    threshold = best_f1_threshold(labels, values)
    assert values.min() <= threshold <= values.max()
    best = precision_recall_f1(labels, values, threshold)["f1"]
    for candidate in np.quantile(values, np.linspace(0.5, 0.9999, 400)):
        assert precision_recall_f1(labels, values, float(candidate))["f1"] <= best + 1e-12


def test_perfect_and_inverted_rankings() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


@HYPOTHESIS
@given(samples)
def test_average_precision_equals_brute_force(sample: list[tuple[bool, float]]) -> None:
    """The sum, over distinct scores from the top, of the precision of flagging every score at
    or above it times the recall that adds."""
    labels, values = [y for y, _ in sample], [s for _, s in sample]
    positives = sum(labels)
    expected, recall_before = 0.0, 0.0
    for threshold in sorted(set(values), reverse=True):
        hits = [y for y, s in sample if s >= threshold]
        recall = sum(hits) / positives if positives else 0.0
        expected += (recall - recall_before) * sum(hits) / len(hits)
        recall_before = recall
    actual = average_precision(labels, values)
    if not positives:
        assert math.isnan(actual)
    else:
        assert actual == pytest.approx(expected, abs=1e-12)
