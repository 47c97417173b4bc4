"""The promotion gate: a candidate passes only when it beats the champion on the same held-out
events by a margin, with statistical support, without losing alert precision, on enough frauds.

Three checks, in order; the first that fails is the reason recorded:

1. at least ``min_frauds`` labelled frauds in the held-out slice (fewer: no test is worth it);
2. DeLong's one-sided test that the candidate's ROC AUC exceeds the champion's by more than
   ``auc_margin``, at level ``alpha``;
3. the candidate's P@k at most ``precision_tolerance`` below the champion's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.delong import AucComparison, compare_aucs, precision_at_k
from models.evaluation import average_precision, roc_auc
from stream_app.settings import Settings


@dataclass(frozen=True)
class GateConfig:
    min_frauds: int
    auc_margin: float
    alpha: float
    precision_tolerance: float
    k: int

    @classmethod
    def from_settings(cls, settings: Settings) -> GateConfig:
        return cls(
            settings.retrain_min_frauds,
            settings.retrain_auc_margin,
            settings.retrain_alpha,
            settings.retrain_precision_tolerance,
            settings.quality_top_k,
        )


@dataclass(frozen=True)
class Scorecard:
    """One model's figures on the held-out slice."""

    roc_auc: float
    pr_auc: float
    precision_at_k: float


@dataclass(frozen=True)
class GateResult:
    champion: Scorecard
    candidate: Scorecard
    comparison: AucComparison | None
    """None when there were too few frauds to test"""
    passed: bool
    reason: str


def decide(
    config: GateConfig,
    labels: npt.ArrayLike,
    champion_scores: npt.ArrayLike,
    candidate_scores: npt.ArrayLike,
) -> GateResult:
    """Apply the gate to both models' scores of the same held-out events.

    >>> config = GateConfig(min_frauds=2, auc_margin=0.0, alpha=0.05, precision_tolerance=0.0, k=2)
    >>> decide(config, [1, 0, 0], [0.9, 0.1, 0.2], [0.8, 0.1, 0.2]).reason
    'held-out slice has 1 labelled frauds, fewer than the 2 required'
    """
    y = np.asarray(labels, dtype=bool)
    champion = _scorecard(y, champion_scores, config.k)
    candidate = _scorecard(y, candidate_scores, config.k)
    frauds = int(y.sum())
    if frauds < config.min_frauds or frauds == len(y) or len(y) - frauds < 2:
        reason = (
            f"held-out slice has {frauds} labelled frauds, fewer than the "
            f"{config.min_frauds} required"
        )
        return GateResult(champion, candidate, None, False, reason)
    comparison = compare_aucs(y, champion_scores, candidate_scores, config.auc_margin)
    gain = f"ROC AUC {candidate.roc_auc:.4f} vs {champion.roc_auc:.4f}"
    if not comparison.p_value < config.alpha:
        reason = (
            f"{gain}: not better by more than {config.auc_margin} "
            f"(DeLong z={comparison.statistic:.2f}, p={comparison.p_value:.3g} >= {config.alpha})"
        )
        return GateResult(champion, candidate, comparison, False, reason)
    floor = champion.precision_at_k - config.precision_tolerance
    if candidate.precision_at_k < floor:
        reason = (
            f"{gain} (p={comparison.p_value:.3g}) but P@{config.k} "
            f"{candidate.precision_at_k:.3f} below {champion.precision_at_k:.3f} - "
            f"{config.precision_tolerance}"
        )
        return GateResult(champion, candidate, comparison, False, reason)
    reason = (
        f"{gain}, better by more than {config.auc_margin} (DeLong z={comparison.statistic:.2f}, "
        f"p={comparison.p_value:.3g} < {config.alpha}); P@{config.k} "
        f"{candidate.precision_at_k:.3f} vs {champion.precision_at_k:.3f}"
    )
    return GateResult(champion, candidate, comparison, True, reason)


def _scorecard(labels: npt.NDArray[np.bool_], scores: npt.ArrayLike, k: int) -> Scorecard:
    return Scorecard(
        roc_auc(labels, scores),
        average_precision(labels, scores),
        precision_at_k(labels, scores, k),
    )
