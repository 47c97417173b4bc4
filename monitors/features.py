"""Monitor of one input feature: the population stability index (PSI) of each window.

The reference sample (the training data's values of the feature) sets the bins, at its
quantiles, and the expected share of each bin. Every ``window`` values the monitor compares the
window's shares with the expected ones,
``PSI = sum((actual - expected) * ln(actual / expected))``, with half a count added to every bin
of the window so that an empty bin stays finite, and raises a drift when the PSI exceeds the
threshold. Under no drift, ``window * PSI`` is close to a chi-squared variable with ``bins - 1``
degrees of freedom: the threshold in ``monitors.calibrated`` is its quantile for the stated
number of events between false alarms. Missing values (NaN) are not counted.

>>> import random
>>> rng = random.Random(5)
>>> monitor = PsiMonitor.from_reference([rng.gauss(0, 1) for _ in range(10_000)])
>>> values = [rng.gauss(0, 1) for _ in range(20_000)] + [rng.gauss(0.25, 1) for _ in range(3_000)]
>>> [i for i, v in enumerate(values) if (monitor.update(v), monitor.drift_detected)[1]]
[20999, 21999, 22999]
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import statistics
from collections.abc import Sequence
from typing import Self

import numpy as np
import numpy.typing as npt

from monitors import calibrated
from monitors.base import MonitorState, MonitorStateError, check_kind, flag, floats, integer, number

#: bins of the reference sample (its deciles)
BINS = 10
#: added to every bin count of a window
PSEUDO_COUNT = 0.5

#: the drifts raised over values read: (position, PSI)
Alarms = list[tuple[int, float]]


def psi(counts: Sequence[float], expected: Sequence[float]) -> float:
    """The population stability index of bin ``counts`` against ``expected`` shares.

    >>> psi([25, 25, 25, 25], [0.25] * 4)
    0.0
    >>> round(psi([40, 30, 20, 10], [0.25] * 4), 4)
    0.218
    """
    total = sum(counts) + PSEUDO_COUNT * len(counts)
    actual = [(c + PSEUDO_COUNT) / total for c in counts]
    return sum((a - e) * math.log(a / e) for a, e in zip(actual, expected, strict=True))


class PsiMonitor:
    """PSI of fixed windows of one feature against a reference sample."""

    kind = "psi"

    def __init__(
        self,
        edges: Sequence[float],
        expected: Sequence[float],
        window: int = calibrated.PSI_WINDOW,
        threshold: float = calibrated.PSI_THRESHOLD,
    ) -> None:
        if len(expected) != len(edges) + 1 or min(expected) <= 0:
            raise ValueError("expected: one positive share per bin, len(edges) + 1 bins")
        if window < 1:
            raise ValueError("window: at least one value")
        self.edges = list(edges)
        self.expected = list(expected)
        self.window = window
        self.threshold = threshold
        self.statistic = 0.0
        self._counts: list[int] = []
        self._n = 0
        self._drift = False
        self.reset()

    @classmethod
    def from_reference(
        cls,
        sample: Sequence[float],
        window: int = calibrated.PSI_WINDOW,
        threshold: float = calibrated.PSI_THRESHOLD,
    ) -> Self:
        """Bins at the sample's deciles, expected shares as the sample falls in them."""
        edges = statistics.quantiles(sample, n=BINS)
        counts = [0] * BINS
        for value in sample:
            counts[bisect.bisect_right(edges, value)] += 1
        return cls(edges, [c / len(sample) for c in counts], window, threshold)

    def update(self, value: float) -> None:
        self._drift = False
        if math.isnan(value):
            return
        self._counts[bisect.bisect_right(self.edges, value)] += 1
        self._n += 1
        if self._n == self.window:
            self._close_window()

    def update_many(self, values: npt.ArrayLike) -> list[tuple[int, float]]:
        """Read ``values`` in order, a window's counts at a time (vectorised): the position of
        each drift raised (as :func:`monitors.base.alarm_positions` gives them) with its PSI.

        >>> monitor = PsiMonitor([0.0], [0.5, 0.5], window=4, threshold=0.1)
        >>> alarms = monitor.update_many([-1, 1, float("nan"), -1, 1, 1, 1, 1, 1])
        >>> [(i, round(s, 3)) for i, s in alarms], monitor.drift_detected
        ([(8, 0.879)], True)
        """
        array = np.asarray(values, dtype=np.float64)
        present = np.flatnonzero(~np.isnan(array))
        bins = np.searchsorted(self.edges, array[present], side="right")
        return self._read(bins, present, len(array))

    def _read(
        self, bins: npt.NDArray[np.intp], present: npt.NDArray[np.intp], length: int
    ) -> Alarms:
        """:meth:`update_many` of ``length`` values already binned: ``bins`` of those at the
        positions ``present`` (NaN left out)."""
        alarms: Alarms = []
        start = 0
        while start < len(bins):
            chunk = bins[start : start + self.window - self._n]
            counts = np.bincount(chunk, minlength=len(self.expected))
            self._counts = [a + int(b) for a, b in zip(self._counts, counts, strict=True)]
            self._n += len(chunk)
            start += len(chunk)
            self._drift = False
            if self._n == self.window:
                self._close_window()
                if self._drift:
                    alarms.append((int(present[start - 1]), self.statistic))
        self._drift = bool(alarms) and alarms[-1][0] == length - 1
        return alarms

    def _close_window(self) -> None:
        self.statistic = psi(self._counts, self.expected)
        self._drift = self.statistic > self.threshold
        self._counts = [0] * len(self.expected)
        self._n = 0

    @property
    def drift_detected(self) -> bool:
        return self._drift

    def reset(self) -> None:
        self._counts = [0] * len(self.expected)
        self._n = 0
        self._drift = False

    def save(self) -> MonitorState:
        return {
            "kind": self.kind,
            "edges": list(self.edges),
            "expected": list(self.expected),
            "window": self.window,
            "threshold": self.threshold,
            "counts": list(self._counts),
            "statistic": self.statistic,
            "drift": self._drift,
        }

    @classmethod
    def from_state(cls, state: MonitorState) -> Self:
        check_kind(state, cls.kind)
        monitor = cls(
            edges=floats(state, "edges"),
            expected=floats(state, "expected"),
            window=integer(state, "window"),
            threshold=number(state, "threshold"),
        )
        counts = floats(state, "counts")
        # a window that can never fill would keep update_many from moving on
        if len(counts) != len(monitor.expected) or min(counts) < 0 or sum(counts) >= monitor.window:
            raise MonitorStateError("counts: one per bin, fewer than a window in all")
        monitor._counts = [integer({"count": c}, "count") for c in counts]
        monitor._n = sum(monitor._counts)
        monitor.statistic = number(state, "statistic")
        monitor._drift = flag(state, "drift")
        return monitor


class PsiBank:
    """Several :class:`PsiMonitor` over the columns of one matrix, updated together.

    Each column is binned once (``searchsorted`` on its monitor's edges) and the bins of every
    column counted in one ``bincount``; a column whose window closes inside the batch reads its
    bins window by window instead. Either way each monitor ends as its
    :meth:`~PsiMonitor.update_many` over its column would leave it.

    >>> a, b = PsiMonitor([0.0], [0.5, 0.5], window=4), PsiMonitor([1.0, 2.0], [0.2, 0.3, 0.5])
    >>> bank = PsiBank([a, b])
    >>> bank.update_many(np.array([[-1.0, 1.5], [float("nan"), 3.0], [2.0, 0.0]]))
    [[], []]
    >>> a.save()["counts"], b.save()["counts"]
    ([1, 1], [1, 1, 1])
    """

    def __init__(self, monitors: Sequence[PsiMonitor]) -> None:
        self.monitors = list(monitors)
        width = max((len(m.edges) for m in self.monitors), default=0)
        self._edges = np.full((len(self.monitors), width), np.nan)
        for row, monitor in enumerate(self.monitors):
            self._edges[row, : len(monitor.edges)] = monitor.edges
        self._bins = width + 1
        #: banks with equal layouts bin a value alike (:func:`update_banks` takes such banks)
        self.layout = self._edges.tobytes()

    def update_many(self, columns: npt.NDArray[np.float64]) -> list[list[tuple[int, float]]]:
        """Column ``j`` of ``columns`` read by monitor ``j``: each monitor's alarms, as its
        :meth:`PsiMonitor.update_many` gives them."""
        return update_banks([self], columns, [len(columns)])[0]

    def _add(
        self,
        bins: npt.NDArray[np.intp],
        missing: npt.NDArray[np.bool_],
        counts: list[list[int]],
        found: list[int],
    ) -> list[Alarms]:
        """Add each monitor's bin ``counts`` (``found`` values, the ``missing`` ones left out), or
        let it read its column's ``bins`` window by window where a window closes."""
        alarms: list[Alarms] = []
        for j, (monitor, row) in enumerate(zip(self.monitors, counts, strict=True)):
            if monitor._n + found[j] >= monitor.window:
                present = np.flatnonzero(~missing[:, j])
                alarms.append(monitor._read(bins[present, j], present, len(bins)))
                continue
            monitor._counts = list(map(operator.add, monitor._counts, row))  # row may be longer
            monitor._n += found[j]
            monitor._drift = False
            alarms.append([])
        return alarms


def update_banks(
    banks: Sequence[PsiBank], columns: npt.NDArray[np.float64], sizes: Sequence[int]
) -> list[list[list[tuple[int, float]]]]:
    """Bank ``k`` reads the next ``sizes[k]`` rows of ``columns`` (the rows of one input partition
    each), every bank binned and counted in one pass: each bank's alarms as its
    :meth:`PsiBank.update_many` over its rows gives them. The banks share one ``layout``.

    >>> a, b = (PsiBank([PsiMonitor([0.0], [0.5, 0.5], window=4)]) for _ in "ab")
    >>> update_banks([a, b], np.array([[-1.0], [1.0], [2.0]]), [1, 2])
    [[[]], [[]]]
    >>> a.monitors[0].save()["counts"], b.monitors[0].save()["counts"]
    ([1, 0], [0, 2])
    """
    if any(bank.layout != banks[0].layout for bank in banks):
        raise ValueError("banks of different bins cannot be counted together")
    first, count = banks[0], len(banks)
    width = len(first.monitors)
    if not width:
        return [[] for _ in banks]
    missing = np.isnan(columns)
    bins = np.column_stack(  # a NaN lands past the last edge: left out by ``missing``
        [
            np.searchsorted(m.edges, columns[:, j], side="right")
            for j, m in enumerate(first.monitors)
        ]
    )
    cell = np.arange(width) + width * np.repeat(np.arange(count), sizes)[:, None]
    flat = (bins + first._bins * cell)[~missing]
    counts = np.bincount(flat, minlength=first._bins * width * count)
    counts = counts.reshape(count, width, first._bins)
    alarms = []
    starts = list(itertools.accumulate(sizes, initial=0))
    for bank, start, end, bank_counts, found in zip(
        banks, starts[:-1], starts[1:], counts.tolist(), counts.sum(axis=2).tolist(), strict=True
    ):
        alarms.append(bank._add(bins[start:end], missing[start:end], bank_counts, found))
    return alarms
