"""Page-Hinkley on the scores: a stationary stream with a heavy right tail in short runs (frauds
and near-frauds, in episodes) raises no alarm once the standardised log-odds are clipped (it
did before the clip), a shift of the bulk is still found, and a state saved before the clip
existed is restored with today's default."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt

from monitors import calibrated
from monitors.scores import ScoreMonitor, log_odds_array

EVENTS = 100_000
#: no clip at all: the monitor as it was before
UNCLIPPED = 1e9


def scores(seed: int, shift_at: int | None = None) -> npt.NDArray[np.float64]:
    """Log-odds N(0, 1), 2 % of them far in the right tail (3 + an exponential of mean 3, in
    runs of two: the shape of the generator's scores, whose top 4 % sit beyond 3 standard
    deviations, somewhat clustered); from ``shift_at`` on, everything moves by a quarter of the
    reference's standard deviation."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.0, EVENTS)
    starts = np.flatnonzero(rng.random(EVENTS - 1) < 0.01)
    for k in (0, 1):
        z[starts + k] = 3.0 + rng.exponential(3.0, len(starts))
    if shift_at is not None:
        z[shift_at:] += 0.25 * REFERENCE_STD
    return 1.0 / (1.0 + np.exp(-z))


_reference = log_odds_array(scores(99))  # as a training slice would give them
REFERENCE_MEAN, REFERENCE_STD = float(_reference.mean()), float(_reference.std())


def monitor(clip: float = calibrated.PAGE_HINKLEY_CLIP) -> ScoreMonitor:
    return ScoreMonitor(REFERENCE_MEAN, REFERENCE_STD, clip=clip)


def alarms(monitor: ScoreMonitor, values: npt.NDArray[np.float64]) -> list[int]:
    return [i for i, _ in monitor.update_many(values)]


def test_a_heavy_tail_raises_no_alarm_once_clipped() -> None:
    for seed in range(5):
        stream = scores(seed)
        assert alarms(monitor(clip=UNCLIPPED), stream), f"seed {seed}"
        assert alarms(monitor(), stream) == [], f"seed {seed}"


def test_a_shift_of_the_bulk_is_still_found() -> None:
    for seed in range(3):
        found = alarms(monitor(), scores(seed, shift_at=50_000))
        assert found, f"seed {seed}"
        assert 50_000 <= found[0] < 53_000, f"seed {seed}: {found}"


def test_one_by_one_and_vectorised_updates_clip_alike() -> None:
    stream = scores(7, shift_at=50_000)
    one = monitor()
    by_one = [i for i, s in enumerate(stream.tolist()) if (one.update(s), one.drift_detected)[1]]
    assert by_one == alarms(monitor(), stream)


def test_a_state_saved_before_the_clip_gets_the_default_clip() -> None:
    stream = scores(11, shift_at=50_000)
    original = monitor()
    original.update_many(stream[:30_000])
    saved = json.loads(json.dumps(original.save()))
    del saved["clip"]  # as states were saved before the clip existed
    restored = ScoreMonitor.from_state(saved)
    assert restored.clip == calibrated.PAGE_HINKLEY_CLIP
    assert alarms(restored, stream[30_000:]) == alarms(original, stream[30_000:])
