"""Held-out evaluation of a binary scorer, in plain numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half).

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    return rank_auc(labels, average_ranks(scores))


def rank_auc(labels: npt.ArrayLike, ranks: npt.NDArray[np.float64]) -> float:
    """ROC AUC from the scores' :func:`average_ranks` (computed once for many labellings).

    >>> rank_auc([0, 1, 1], average_ranks([0.2, 0.1, 0.9]))
    0.5
    """
    y = np.asarray(labels, dtype=bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_ranks(scores: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """1-based ranks of ``scores``, tied scores sharing their average rank.

    >>> average_ranks([0.3, 0.1, 0.3]).tolist()
    [2.5, 1.0, 2.5]
    """
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def average_precision(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the precision-recall curve as average precision: the precision at each
    distinct score, weighted by the recall it adds (tied scores enter together, as in sklearn).

    >>> average_precision([0, 1, 0, 1], [0.1, 0.9, 0.8, 0.4])
    0.8333333333333333
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    sorted_scores, hits = s[order], y[order]
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    true_pos = np.cumsum(hits)[last_of_tie]
    flagged = np.flatnonzero(last_of_tie) + 1.0
    recall_gain = np.diff(np.r_[0, true_pos]) / y.sum()
    return float((recall_gain * true_pos / flagged).sum())


def precision_recall_f1(
    labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float
) -> dict[str, float]:
    """Precision, recall and F1 of ``score >= threshold``.

    >>> precision_recall_f1([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.7], 0.5)
    {'precision': 0.5, 'recall': 0.5, 'f1': 0.5}
    """
    y = np.asarray(labels, dtype=bool)
    flagged = np.asarray(scores, dtype=np.float64) >= threshold
    true_pos = float((flagged & y).sum())
    precision = true_pos / flagged.sum() if flagged.any() else 0.0
    recall = true_pos / y.sum() if y.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def best_f1_threshold(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """The score threshold (among a grid of quantiles) with the highest F1.

    >>> best_f1_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) <= 0.8
    True
    """
    s = np.asarray(scores, dtype=np.float64)
    candidates = np.unique(np.quantile(s, np.linspace(0.5, 0.9999, 400)))
    f1s = [precision_recall_f1(labels, s, float(t))["f1"] for t in candidates]
    return float(candidates[int(np.argmax(f1s))])
