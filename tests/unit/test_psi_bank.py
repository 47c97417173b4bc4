"""The PSI bank updates every feature's monitor as its own ``update_many`` over the feature's
column would: same alarms at the same positions, same statistics, same saved states."""

from __future__ import annotations

import itertools

import numpy as np

from monitors.features import PsiBank, PsiMonitor


def monitors(reference: np.ndarray, window: int) -> list[PsiMonitor]:
    return [PsiMonitor.from_reference(column.tolist(), window=window) for column in reference.T]


def test_the_bank_and_each_monitor_alone_agree_on_a_fixed_stream() -> None:
    rng = np.random.default_rng(11)
    reference = np.column_stack([rng.normal(size=5_000), rng.exponential(size=5_000)])
    stream = np.column_stack([rng.normal(size=30_000), rng.exponential(size=30_000)])
    stream[20_000:, 0] += 0.5  # a shift in the first feature
    stream[20_000:, 1] *= 1.5  # and in the second
    stream[rng.random(stream.shape) < 0.1] = np.nan  # missing values, not in step per column
    alone, together = monitors(reference, 300), monitors(reference, 300)
    bank = PsiBank(together)
    sizes = rng.choice([1, 7, 50, 500, 1_300], size=200)
    ends = np.cumsum(np.concatenate([[0], sizes]))
    starts = [*ends[ends < len(stream)].tolist(), len(stream)]
    by_one: list[list[tuple[int, float]]] = [[], []]
    by_bank: list[list[tuple[int, float]]] = [[], []]
    for start, end in itertools.pairwise(starts):
        for j, monitor in enumerate(alone):
            by_one[j] += [(start + i, s) for i, s in monitor.update_many(stream[start:end, j])]
        for j, raised in enumerate(bank.update_many(stream[start:end])):
            by_bank[j] += [(start + i, s) for i, s in raised]
        assert [m.save() for m in together] == [m.save() for m in alone]
    assert by_bank == by_one
    assert all(len(alarms) > 5 for alarms in by_one)  # the stream does raise drifts
