"""Seconds spent per stage of a loop, accumulated cheaply (two clock reads per stage per batch)."""

from __future__ import annotations

import time
from collections import defaultdict


def now_ms() -> int:
    """The wall clock in epoch milliseconds (the default clock of everything that takes one)."""
    return int(time.time() * 1000)


class StageTimes:
    """Laps of a stopwatch, summed per stage name.

    >>> times = StageTimes()
    >>> times.start(); times.lap("decode"); times.lap("predict")
    >>> sorted(times.seconds)
    ['decode', 'predict']
    """

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self._last = time.perf_counter()

    def start(self) -> None:
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] += now - self._last
        self._last = now

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)
