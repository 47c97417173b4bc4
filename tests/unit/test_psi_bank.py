"""The PSI bank updates every feature's monitor as its own ``update_many`` over the feature's
column would: same alarms at the same positions, same statistics, same saved states."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from monitors.features import PsiBank, PsiMonitor, update_banks


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


def test_banks_of_several_partitions_counted_together_agree_with_each_bank_alone() -> None:
    rng = np.random.default_rng(12)
    reference = np.column_stack([rng.normal(size=5_000), rng.exponential(size=5_000)])
    partitions = 4
    alone = [PsiBank(monitors(reference, 300)) for _ in range(partitions)]
    together = [PsiBank(monitors(reference, 300)) for _ in range(partitions)]
    raised = 0
    for turn in range(300):
        sizes = rng.choice([0, 1, 7, 50, 500], size=partitions).tolist()
        parts = [np.column_stack([rng.normal(size=n), rng.exponential(size=n)]) for n in sizes]
        for p, part in enumerate(parts):  # shifted from turn 150 on, later in later partitions
            part[:, 0] += 0.5 * (turn >= 150 + 30 * p)
            part[rng.random(part.shape) < 0.1] = np.nan
        by_one = [bank.update_many(part) for bank, part in zip(alone, parts, strict=True)]
        assert update_banks(together, np.concatenate(parts), sizes) == by_one
        assert [[m.save() for m in b.monitors] for b in together] == [
            [m.save() for m in b.monitors] for b in alone
        ]
        raised += sum(len(alarms) for bank in by_one for alarms in bank)
    assert raised > 10  # the shifts do raise drifts


def test_banks_of_other_bins_are_not_counted_together() -> None:
    one, other = PsiBank([PsiMonitor([0.0], [0.5, 0.5])]), PsiBank([PsiMonitor([1.0], [0.5, 0.5])])
    with pytest.raises(ValueError, match="different bins"):
        update_banks([one, other], np.zeros((2, 1)), [1, 1])
