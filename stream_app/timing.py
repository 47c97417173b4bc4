"""Seconds spent per stage of a loop, accumulated cheaply (two clock reads and a bisection per
stage per batch), and the distributions behind the Prometheus histograms."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable

#: upper bounds of a stage's duration histogram, seconds
STAGE_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: upper bounds of a batch size histogram, records
BATCH_BOUNDS = (1, 10, 100, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000)


def now_ms() -> int:
    """The wall clock in epoch milliseconds (the default clock of everything that takes one)."""
    return int(time.time() * 1000)


class Distribution:
    """Observations counted per bucket (non-cumulative; the last one is ``+Inf``) and summed.

    >>> sizes = Distribution((10, 100))
    >>> for size in (3, 10, 50, 700):
    ...     sizes.observe(size)
    >>> sizes.counts, sizes.total
    ([2, 1, 1], 763.0)
    """

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class StageTimes:
    """Laps of a stopwatch per stage name: their distribution and their sum.

    >>> times = StageTimes()
    >>> times.start(); times.lap("decode"); times.lap("predict"); times.lap("decode")
    >>> sorted(times.snapshot()), sum(times.laps["decode"].counts)
    (['decode', 'predict'], 2)
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        """``clock``: wall time by default; ``time.thread_time`` counts the thread's CPU only."""
        self.laps: dict[str, Distribution] = {}
        self._clock = clock
        self._last = clock()

    def start(self) -> None:
        self._last = self._clock()

    def lap(self, stage: str) -> None:
        now = self._clock()
        self.add(stage, now - self._last)
        self._last = now

    def add(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` timed elsewhere for ``stage`` (the stopwatch is left as it is)."""
        laps = self.laps.get(stage)
        if laps is None:
            laps = self.laps[stage] = Distribution(STAGE_BOUNDS)
        laps.observe(seconds)

    def snapshot(self) -> dict[str, float]:
        """Seconds per stage, summed."""
        return {stage: laps.total for stage, laps in list(self.laps.items())}

    def over(self, bound: float) -> dict[str, int]:
        """Laps per stage longer than ``bound`` seconds, one of :data:`STAGE_BOUNDS`: the tail
        that a sum hides.

        >>> times = StageTimes()
        >>> for seconds in (0.002, 0.03, 0.3):
        ...     times.add("wait", seconds)
        >>> times.over(0.025)
        {'wait': 2}
        """
        above = STAGE_BOUNDS.index(bound) + 1
        return {stage: sum(laps.counts[above:]) for stage, laps in list(self.laps.items())}
