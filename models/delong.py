"""DeLong's test for two correlated ROC AUCs (two models scored on the same labelled events).

DeLong, DeLong & Clarke-Pearson (1988), computed with midranks as Sun & Xu (2014) show: each
fraud's *placement* is the share of legitimate events it outscores (ties half), each legitimate
event's the share of frauds that outscore it; an AUC is the mean placement, and the covariance of
the two models' placements gives the variance of the AUC difference. The normal tail is
``math.erfc``: no other dependency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.evaluation import average_ranks

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AucComparison:
    """Champion and candidate AUCs on the same events and the one-sided test of
    ``candidate - champion > margin``."""

    champion_auc: float
    candidate_auc: float
    variance: float
    """of the difference ``candidate_auc - champion_auc``"""
    statistic: float
    """z = (difference - margin) / sqrt(variance); NaN when the variance is zero"""
    p_value: float
    """P(Z >= z) under H0 (the candidate is better by at most the margin); 1 without a variance"""


def placements(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Each fraud's share of legitimate events it outscores, and each legitimate event's share
    of frauds that outscore it (ties count half); both means are the ROC AUC.

    >>> v10, v01 = placements([1, 0, 1, 0], [0.9, 0.5, 0.4, 0.1])
    >>> v10.tolist(), v01.tolist()
    ([1.0, 0.5], [0.5, 1.0])
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    positives, negatives = s[y], s[~y]
    m, n = len(positives), len(negatives)
    overall = average_ranks(np.concatenate([positives, negatives]))
    v10 = (overall[:m] - average_ranks(positives)) / n
    v01 = 1.0 - (overall[m:] - average_ranks(negatives)) / m
    return v10, v01


def compare_aucs(
    labels: npt.ArrayLike,
    champion: npt.ArrayLike,
    candidate: npt.ArrayLike,
    margin: float = 0.0,
) -> AucComparison:
    """DeLong's test of ``AUC(candidate) - AUC(champion) > margin`` on the same labelled events.

    >>> y = [1, 1, 1, 0, 0, 0, 0]
    >>> champion = [0.9, 0.2, 0.5, 0.6, 0.1, 0.3, 0.4]
    >>> candidate = [0.9, 0.8, 0.7, 0.6, 0.1, 0.3, 0.4]
    >>> result = compare_aucs(y, champion, candidate)
    >>> result.champion_auc, result.candidate_auc, round(result.p_value, 3)
    (0.6666666666666666, 1.0, 0.099)
    """
    y = np.asarray(labels, dtype=bool)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's test needs two events of each class ({m} frauds, {n} others)")
    champion_v10, champion_v01 = placements(y, champion)
    candidate_v10, candidate_v01 = placements(y, candidate)
    s10 = np.cov(np.vstack([champion_v10, candidate_v10]))
    s01 = np.cov(np.vstack([champion_v01, candidate_v01]))
    covariance = s10 / m + s01 / n
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    champion_auc, candidate_auc = float(champion_v10.mean()), float(candidate_v10.mean())
    if variance <= 0.0:
        return AucComparison(champion_auc, candidate_auc, 0.0, float("nan"), 1.0)
    statistic = (candidate_auc - champion_auc - margin) / math.sqrt(variance)
    p_value = 0.5 * math.erfc(statistic / math.sqrt(2.0))
    return AucComparison(champion_auc, candidate_auc, variance, statistic, p_value)


def precision_at_k(labels: npt.ArrayLike, scores: npt.ArrayLike, k: int) -> float:
    """Share of frauds among the ``k`` highest scores (all events if fewer), the alert precision
    P@k fraud teams use; ties broken by position, as the ``quality_at_k`` view's ``topK`` does.

    >>> precision_at_k([0, 1, 1, 0], [0.1, 0.9, 0.3, 0.8], 2)
    0.5
    """
    y = np.asarray(labels, dtype=bool)
    top = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return float(y[top].mean()) if len(top) else float("nan")
