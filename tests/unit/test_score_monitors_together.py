"""The score monitors of several partitions updated in one pass (``update_together``): the same
alarms and states as each monitor alone, and as River's own ``PageHinkley`` read value by value."""

from __future__ import annotations

import numpy as np
import pytest
from river import drift

from monitors.scores import ScoreMonitor, log_odds_array, update_together

PARTITIONS = 4
THRESHOLD = 8.0  # low, so that detections (and the reset after each) happen inside batches


def make() -> ScoreMonitor:
    return ScoreMonitor(reference_mean=-2.0, reference_std=1.5, threshold=THRESHOLD)


def streams(seed: int) -> list[np.ndarray]:
    """One stream of scores per partition, its log-odds shifting at its own point."""
    rng = np.random.default_rng(seed)
    out = []
    for p in range(PARTITIONS):
        z = rng.normal(-2.0, 1.5, 6_000)
        z[1_500 + 1_000 * p :] += 0.75
        out.append(1 / (1 + np.exp(-z)))
    return out


def batches(seed: int) -> list[list[np.ndarray]]:
    """The streams cut in turns, each turn a batch of a random size per partition (0 included)."""
    rng = np.random.default_rng(seed + 1)
    data, read, turns = streams(seed), [0] * PARTITIONS, []
    while any(r < len(s) for r, s in zip(read, data, strict=True)):
        sizes = rng.choice([0, 1, 3, 12, 125, 1_250], size=PARTITIONS)
        turns.append([s[r : r + n] for s, r, n in zip(data, read, sizes, strict=True)])
        read = [r + int(n) for r, n in zip(read, sizes, strict=True)]
    return turns


@pytest.mark.parametrize("seed", [1, 2])
def test_together_gives_exactly_what_each_monitor_gives_alone(seed: int) -> None:
    alone, together = [make() for _ in range(PARTITIONS)], [make() for _ in range(PARTITIONS)]
    detections = 0
    for parts in batches(seed):
        one_by_one = [m.update_many(part) for m, part in zip(alone, parts, strict=True)]
        in_one_pass = update_together(together, np.concatenate(parts), [len(p) for p in parts])
        assert in_one_pass == one_by_one
        assert [m.save() for m in together] == [m.save() for m in alone]
        detections += sum(map(len, one_by_one))
    assert detections >= 2 * PARTITIONS  # every partition's shift, and the resets after them


@pytest.mark.parametrize("seed", [1, 2])
def test_together_follows_rivers_page_hinkley_read_one_value_at_a_time(seed: int) -> None:
    monitors = [make() for _ in range(PARTITIONS)]
    river = [
        drift.PageHinkley(min_instances=30, delta=m.delta, threshold=THRESHOLD, alpha=1.0)
        for m in monitors
    ]
    read = [0] * PARTITIONS
    by_river: list[list[int]] = [[] for _ in range(PARTITIONS)]
    by_pass: list[list[int]] = [[] for _ in range(PARTITIONS)]
    for parts in batches(seed):
        raised = update_together(monitors, np.concatenate(parts), [len(p) for p in parts])
        for p, (detector, part) in enumerate(zip(river, parts, strict=True)):
            by_pass[p] += [read[p] + i for i, _ in raised[p]]
            clip = monitors[p].clip  # the monitor reads its values clipped; River as given
            for x in np.clip((log_odds_array(part) + 2.0) / 1.5, -clip, clip):
                detector.update(float(x))
                by_river[p] += [read[p]] if detector.drift_detected else []
                read[p] += 1
    assert by_pass == by_river
    assert all(len(alarms) >= 2 for alarms in by_river)
    for monitor, detector in zip(monitors, river, strict=True):
        d = monitor._detector
        assert d._x_mean.n == detector._x_mean.n
        assert d.drift_detected == detector.drift_detected
        for ours, theirs in [
            (d._x_mean.get(), detector._x_mean.get()),
            (d._sum_increase, detector._sum_increase),
            (d._sum_decrease, detector._sum_decrease),
            (d._min_increase, detector._min_increase),
            (d._max_decrease, detector._max_decrease),
        ]:
            assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-9)
