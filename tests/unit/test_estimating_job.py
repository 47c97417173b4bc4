"""``stream-app estimate``'s choice of reference and windows, without a broker."""

from __future__ import annotations

import numpy as np
import pytest

from stream_app.estimating.job import DAY_MS, HOUR_MS, VersionPredictions, estimate_version
from stream_app.settings import Settings

START = 20_000 * DAY_MS + 22 * HOUR_MS  # 22:00 UTC: the run crosses midnight


def predictions(hours: int = 6, per_hour: int = 400, seed: int = 0) -> VersionPredictions:
    rng = np.random.default_rng(seed)
    n = hours * per_hour
    fraud = rng.random(n) < 0.1
    score = np.clip(rng.normal(np.where(fraud, 0.7, 0.3), 0.15), 0, 1)
    return VersionPredictions(
        version="7",
        event_time=START + np.arange(n) * (HOUR_MS // per_hour),
        score=score,
        flagged=score >= 0.5,
        card_id=np.array([f"c{i % 300}" for i in range(n)]),
        terminal=np.array([f"m{i % 70}" for i in range(n)]),
        chargeback_known=rng.random(n) < 0.9,
        is_fraud=fraud,
    )


def test_windows_that_end_after_the_reference_are_estimated() -> None:
    settings = Settings(estimate_reference_hours=2.5, estimate_min_reference_frauds=5)
    records = estimate_version(settings, predictions(), {"run_id": "r", "estimated_time": 0})
    # hours 22:00 to 03:00; the reference ends at 00:30: the hours from 00:00 on, and the
    # second day only (the first ends at midnight, inside the reference)
    hours = sorted(r["window_start"] for r in records if r["window"] == "hour")
    days = sorted(r["window_start"] for r in records if r["window"] == "day")
    assert hours == [START + h * HOUR_MS for h in range(2, 6)]
    assert days == [START + 2 * HOUR_MS]
    assert all(r["reference_end"] == START + int(2.5 * HOUR_MS) for r in records)
    assert sum(r["predictions"] for r in records if r["window"] == "hour") == 4 * 400
    for r in records:
        for name in ("precision", "recall", "f1", "roc_auc"):
            assert r[f"{name}_low"] <= r[name] <= r[f"{name}_high"], (r["window_start"], name)


@pytest.mark.parametrize("frauds", [4, 0])
def test_a_version_with_too_few_reference_frauds_is_skipped(frauds: int) -> None:
    p = predictions()
    reference = np.flatnonzero(p.event_time < START + 2 * HOUR_MS)
    is_fraud = p.is_fraud.copy()
    is_fraud[reference] = False
    is_fraud[reference[:frauds]] = True
    known = np.ones(len(is_fraud), dtype=bool)
    p = VersionPredictions(**{**vars(p), "is_fraud": is_fraud, "chargeback_known": known})
    settings = Settings(estimate_reference_hours=2, estimate_min_reference_frauds=5)
    assert estimate_version(settings, p, {"run_id": "r", "estimated_time": 0}) == []
