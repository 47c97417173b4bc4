"""The retraining gate (stream_app/retraining/gate.py): each of its three checks refuses on its
own, and a candidate that passes all three is accepted."""

from __future__ import annotations

import numpy as np

from stream_app.retraining.gate import GateConfig, decide

CONFIG = GateConfig(min_frauds=200, auc_margin=0.01, alpha=0.05, precision_tolerance=0.02, k=50)


def labelled(seed: int, n: int = 4000, rate: float = 0.1):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < rate
    return rng, y


def test_a_clearly_better_candidate_passes() -> None:
    rng, y = labelled(1)
    champion, candidate = rng.normal(y * 0.8, 1.0), rng.normal(y * 2.0, 1.0)
    result = decide(CONFIG, y, champion, candidate)
    assert result.passed, result.reason
    assert result.candidate.roc_auc > result.champion.roc_auc + CONFIG.auc_margin
    assert result.comparison is not None and result.comparison.p_value < CONFIG.alpha
    assert "better by more than 0.01" in result.reason


def test_a_candidate_as_good_as_the_champion_is_refused() -> None:
    rng, y = labelled(2)
    signal = rng.normal(y * 1.5, 1.0)
    champion, candidate = signal + rng.normal(0, 0.3, len(y)), signal + rng.normal(0, 0.3, len(y))
    result = decide(CONFIG, y, champion, candidate)
    assert not result.passed
    assert result.comparison is not None and result.comparison.p_value >= CONFIG.alpha
    assert "not better by more than 0.01" in result.reason


def test_too_few_labelled_frauds_are_refused_before_any_test() -> None:
    rng, y = labelled(3, n=1500)  # ~150 frauds
    champion, candidate = rng.normal(y * 0.5, 1.0), rng.normal(y * 3.0, 1.0)
    result = decide(CONFIG, y, champion, candidate)
    assert not result.passed and result.comparison is None
    assert f"has {int(y.sum())} labelled frauds, fewer than the 200 required" in result.reason


def test_a_better_auc_that_loses_alert_precision_is_refused() -> None:
    rng, y = labelled(4)
    champion = rng.normal(0, 1.0, len(y))
    champion[np.flatnonzero(y)[:50]] = 10.0  # the champion's top 50 are frauds
    candidate = rng.normal(y * 2.0, 1.0)
    candidate[np.flatnonzero(~y)[:50]] = 20.0  # the candidate's top 50 are not
    result = decide(CONFIG, y, champion, candidate)
    assert result.comparison is not None and result.comparison.p_value < CONFIG.alpha
    assert result.champion.precision_at_k == 1.0 and result.candidate.precision_at_k == 0.0
    assert not result.passed
    assert "P@50 0.000 below 1.000" in result.reason
