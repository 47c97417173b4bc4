"""Monitor of the score distribution, label-free: Page-Hinkley on the score's log-odds.

Each score is turned into its log-odds (clipped away from 0 and 1) and standardised with the
mean and standard deviation of the log-odds on a reference window (the training scores), so
that the threshold is in units of the reference's standard deviation whatever the model. River's
Page-Hinkley (both directions, no forgetting) then accumulates the deviations from the running
mean beyond ``delta``: ``delta`` is half the smallest shift worth catching, the threshold comes
from ``monitors.calibrated``.

>>> import random
>>> rng = random.Random(3)
>>> monitor = ScoreMonitor(reference_mean=0.0, reference_std=1.0)
>>> def score(shift: float) -> float:
...     return 1 / (1 + math.exp(-rng.gauss(shift, 1.0)))
>>> scores = [score(0.0) for _ in range(20_000)] + [score(0.25) for _ in range(5_000)]
>>> [i for i, s in enumerate(scores) if (monitor.update(s), monitor.drift_detected)[1]]
[20464]
"""

from __future__ import annotations

import math
from typing import Self

from river import drift

from monitors import calibrated
from monitors.base import MonitorState, number, number_or_none
from monitors.river_state import RiverMonitor, finite_or_none, float_or, mean_from, mean_state

#: scores are clipped to [EPS, 1 - EPS] before the log-odds: a score of exactly 0 or 1 stays finite
EPS = 1e-9


def log_odds(score: float) -> float:
    """The log-odds of a score in [0, 1], clipped.

    >>> round(log_odds(0.5), 6), round(log_odds(0.9), 4), log_odds(1.0) < 21
    (0.0, 2.1972, True)
    """
    p = min(max(score, EPS), 1.0 - EPS)
    return math.log(p / (1.0 - p))


class ScoreMonitor(RiverMonitor):
    """Page-Hinkley on the standardised log-odds of the scores."""

    kind = "page_hinkley_log_odds"

    def __init__(
        self,
        reference_mean: float,
        reference_std: float,
        threshold: float = calibrated.PAGE_HINKLEY_THRESHOLD,
        delta: float = calibrated.PAGE_HINKLEY_DELTA,
        min_instances: int = 30,
    ) -> None:
        if reference_std <= 0:
            raise ValueError("reference_std must be positive")
        super().__init__(
            drift.PageHinkley(
                min_instances=min_instances, delta=delta, threshold=threshold, alpha=1.0
            )
        )
        self.reference_mean = reference_mean
        self.reference_std = reference_std
        self.threshold = threshold
        self.delta = delta
        self.min_instances = min_instances

    def update(self, value: float) -> None:
        super().update((log_odds(value) - self.reference_mean) / self.reference_std)

    @property
    def statistic(self) -> float:
        """The larger of the two cumulative deviations the threshold is compared with."""
        d = self._detector
        return float(max(d._sum_increase - d._min_increase, d._max_decrease - d._sum_decrease))

    def save(self) -> MonitorState:
        d = self._detector
        return self._header() | {
            "reference_mean": self.reference_mean,
            "reference_std": self.reference_std,
            "threshold": self.threshold,
            "delta": self.delta,
            "min_instances": self.min_instances,
            "mean": mean_state(d._x_mean),
            "sum_increase": d._sum_increase,
            "sum_decrease": d._sum_decrease,
            "max_decrease": d._max_decrease,
            "min_increase": finite_or_none(d._min_increase),
        }

    @classmethod
    def from_state(cls, state: MonitorState) -> Self:
        cls._check(state)
        monitor = cls(
            reference_mean=number(state, "reference_mean"),
            reference_std=number(state, "reference_std"),
            threshold=number(state, "threshold"),
            delta=number(state, "delta"),
            min_instances=int(number(state, "min_instances")),
        )
        d = monitor._detector
        d._x_mean = mean_from(state, "mean")
        d._sum_increase, d._sum_decrease, d._max_decrease = (
            number(state, k) for k in ("sum_increase", "sum_decrease", "max_decrease")
        )
        d._min_increase = float_or(number_or_none(state, "min_increase"), math.inf)
        monitor._restore_flag(state)
        return monitor
