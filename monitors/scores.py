"""Monitor of the score distribution, label-free: Page-Hinkley on the score's log-odds.

Each score is turned into its log-odds (clipped away from 0 and 1) and standardised with the
mean and standard deviation of the log-odds on a reference window (the training scores), so
that the threshold is in units of the reference's standard deviation whatever the model. The
standardised value is then clipped to ``±clip`` (winsorised): fraud and near-fraud scores form
a long right tail, several standard deviations above the bulk, and frauds come in episodes (a
compromised terminal, a card-testing burst), so a few of them close together would otherwise
move the cumulative sums as much as a sustained shift of the whole distribution. River's
Page-Hinkley (both directions, no forgetting) then accumulates the deviations from the running
mean beyond ``delta``: ``delta`` is half the smallest shift worth catching; the threshold and
the clip come from ``monitors.calibrated``.

>>> import random
>>> rng = random.Random(3)
>>> monitor = ScoreMonitor(reference_mean=0.0, reference_std=1.0)
>>> def score(shift: float) -> float:
...     return 1 / (1 + math.exp(-rng.gauss(shift, 1.0)))
>>> scores = [score(0.0) for _ in range(20_000)] + [score(0.25) for _ in range(5_000)]
>>> [i for i, s in enumerate(scores) if (monitor.update(s), monitor.drift_detected)[1]]
[20392]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Self

import numpy as np
import numpy.typing as npt
from river import drift, stats

from monitors import calibrated
from monitors.base import MonitorState, integer, number, number_or_none
from monitors.river_state import RiverMonitor, finite_or_none, float_or, mean_from, mean_state

#: scores are clipped to [EPS, 1 - EPS] before the log-odds: a score of exactly 0 or 1 stays finite
EPS = 1e-9


def log_odds_array(scores: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """:func:`log_odds` of every score, vectorised.

    >>> log_odds_array([0.5, 1.0]).round(3).tolist()
    [0.0, 20.723]
    """
    p = np.clip(np.asarray(scores, dtype=np.float64), EPS, 1.0 - EPS)
    return np.asarray(np.log(p / (1.0 - p)), dtype=np.float64)


def log_odds(score: float) -> float:
    """The log-odds of a score in [0, 1], clipped.

    >>> round(log_odds(0.5), 6), round(log_odds(0.9), 4), log_odds(1.0) < 21
    (0.0, 2.1972, True)
    """
    p = min(max(score, EPS), 1.0 - EPS)
    return math.log(p / (1.0 - p))


class ScoreMonitor(RiverMonitor):
    """Page-Hinkley on the standardised log-odds of the scores, clipped to ``±clip``."""

    kind = "page_hinkley_log_odds"

    def __init__(
        self,
        reference_mean: float,
        reference_std: float,
        threshold: float = calibrated.PAGE_HINKLEY_THRESHOLD,
        delta: float = calibrated.PAGE_HINKLEY_DELTA,
        min_instances: int = 30,
        clip: float = calibrated.PAGE_HINKLEY_CLIP,
    ) -> None:
        if reference_std <= 0 or clip <= 0:
            raise ValueError("reference_std and clip must be positive")
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
        self.clip = clip

    def update(self, value: float) -> None:
        x = (log_odds(value) - self.reference_mean) / self.reference_std
        super().update(min(max(x, -self.clip), self.clip))

    def update_many(self, scores: npt.ArrayLike) -> list[tuple[int, float]]:
        """Read ``scores`` in order, vectorised (River's Page-Hinkley recurrences as cumulative
        sums, the running mean as River's up to rounding): each drift's position with its
        statistic, as one :meth:`update` a score would give them.

        >>> rng = np.random.default_rng(4)
        >>> z = np.concatenate([rng.normal(0, 1, 3_000), rng.normal(1, 1, 3_000)])
        >>> scores = 1 / (1 + np.exp(-z))
        >>> one, many = ScoreMonitor(0.0, 1.0), ScoreMonitor(0.0, 1.0)
        >>> by_one = [i for i, s in enumerate(scores) if (one.update(s), one.drift_detected)[1]]
        >>> parts = np.array_split(scores, 7)
        >>> starts = np.cumsum([0] + [len(part) for part in parts])
        >>> by_many = [int(s) + i for s, p in zip(starts, parts) for i, _ in many.update_many(p)]
        >>> by_one, by_many, abs(many.statistic - one.statistic) < 1e-9
        ([3053], [3053], True)
        """
        return update_together([self], scores, [len(np.asarray(scores))])[0]

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
            "clip": self.clip,
            "mean": mean_state(d._x_mean),
            "sum_increase": d._sum_increase,
            "sum_decrease": d._sum_decrease,
            "max_decrease": d._max_decrease,
            "min_increase": finite_or_none(d._min_increase),
        }

    @classmethod
    def from_state(cls, state: MonitorState) -> Self:
        """The saved monitor; a state saved before the clip existed gets today's default clip
        (its sums stay valid: the values to come are clipped, those read are not re-read)."""
        cls._check(state)
        monitor = cls(
            reference_mean=number(state, "reference_mean"),
            reference_std=number(state, "reference_std"),
            threshold=number(state, "threshold"),
            delta=number(state, "delta"),
            min_instances=integer(state, "min_instances"),
            clip=number(state, "clip") if "clip" in state else calibrated.PAGE_HINKLEY_CLIP,
        )
        d = monitor._detector
        d._x_mean = mean_from(state, "mean")
        d._sum_increase, d._sum_decrease, d._max_decrease = (
            number(state, k) for k in ("sum_increase", "sum_decrease", "max_decrease")
        )
        d._min_increase = float_or(number_or_none(state, "min_increase"), math.inf)
        monitor._restore_flag(state)
        return monitor


def update_together(
    monitors: Sequence[ScoreMonitor], scores: npt.ArrayLike, sizes: Sequence[int]
) -> list[list[tuple[int, float]]]:
    """Monitor ``k`` reads the next ``sizes[k]`` of ``scores`` in order (the scores of one input
    partition each), all monitors in one vectorised pass: each monitor's alarms, positions counted
    from its first score, and its state exactly as its own :meth:`ScoreMonitor.update_many` over
    its scores would give them (the rows of a padded matrix accumulate as the separate arrays do).

    >>> one, two = (ScoreMonitor(0.0, 1.0, threshold=2.0, min_instances=1, clip=10.0)
    ...             for _ in "12")
    >>> alarms = update_together([one, two], [0.5, 0.5, 0.5, 0.99, 0.5, 0.5], [2, 4])
    >>> [[(i, round(s, 3)) for i, s in raised] for raised in alarms]
    [[], [(1, 2.173)]]
    >>> two.save()["mean"]  # reset by the detection, then the two scores after it
    [2.0, 0.0]
    """
    x = log_odds_array(scores)
    alarms: list[list[tuple[int, float]]] = [[] for _ in monitors]
    # (monitor, first of its scores in x still to read, how many, their position in its scores)
    starts = itertools.accumulate(sizes[:-1], initial=0)
    pending = [
        (k, start, size, 0)
        for k, (start, size) in enumerate(zip(starts, sizes, strict=True))
        if size
    ]
    while pending:  # a second turn only for the scores after a detection
        pending = _page_hinkley_pass(monitors, x, pending, alarms)
    return alarms


def _page_hinkley_pass(
    monitors: Sequence[ScoreMonitor],
    x: npt.NDArray[np.float64],
    pending: list[tuple[int, int, int, int]],
    alarms: list[list[tuple[int, float]]],
) -> list[tuple[int, int, int, int]]:
    """River's Page-Hinkley recurrences as cumulative sums along the rows of one matrix (a row per
    pending monitor), each row up to its first detection: what is left after one, to read next."""
    for k, *_ in pending:
        if monitors[k]._detector.drift_detected:
            monitors[k]._detector._reset()
    _, starts, sizes, _ = np.array(pending).T
    steps = np.arange(sizes.max())
    chunk = x[np.minimum(starts[:, None] + steps, len(x) - 1)]  # past a row's end: never read
    state = np.array([_state_row(monitors[k]) for k, *_ in pending], dtype=np.float64).T[:, :, None]
    n0, mean0, sum_increase, sum_decrease, min_increase0, max_decrease0 = state[:6]
    reference_mean, reference_std, delta, threshold, min_instances, clip = state[6:]
    chunk = np.clip((chunk - reference_mean) / reference_std, -clip, clip)
    n = n0 + (steps + 1)
    mean = (n0 * mean0 + np.cumsum(chunk, axis=1)) / n
    dev = chunk - mean
    increase = sum_increase + np.cumsum(dev - delta, axis=1)
    decrease = sum_decrease + np.cumsum(dev + delta, axis=1)
    min_increase = np.minimum(np.minimum.accumulate(increase, axis=1), min_increase0)
    max_decrease = np.maximum(np.maximum.accumulate(decrease, axis=1), max_decrease0)
    statistic = np.maximum(increase - min_increase, max_decrease - decrease)
    hits = (statistic > threshold) & (n >= min_instances) & (steps < sizes[:, None])
    detected = hits.any(axis=1)
    last = np.where(detected, hits.argmax(axis=1), sizes - 1)
    rows = np.arange(len(pending))
    ends = np.stack([n, mean, increase, decrease, min_increase, max_decrease, statistic])
    left = []
    for (k, start, size, position), end, found, values in zip(
        pending, last.tolist(), detected.tolist(), ends[:, rows, last].T.tolist(), strict=True
    ):
        d = monitors[k]._detector
        d._x_mean = stats.Mean._from_state(values[0], values[1])
        d._sum_increase, d._sum_decrease, d._min_increase, d._max_decrease = values[2:6]
        d._drift_detected = found
        if found:
            alarms[k].append((position + end, values[6]))
            if end + 1 < size:
                left.append((k, start + end + 1, size - end - 1, position + end + 1))
    return left


def _state_row(monitor: ScoreMonitor) -> tuple[float, ...]:
    """What one row of :func:`_page_hinkley_pass` starts from: the detector's state, then the
    monitor's parameters."""
    d = monitor._detector
    return (
        d._x_mean.n,
        d._x_mean.get(),
        d._sum_increase,
        d._sum_decrease,
        d._min_increase,
        d._max_decrease,
        monitor.reference_mean,
        monitor.reference_std,
        monitor.delta,
        monitor.threshold,
        monitor.min_instances,
        monitor.clip,
    )
