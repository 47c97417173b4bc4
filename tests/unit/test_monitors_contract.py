"""Every monitor keeps the same contract: River-shaped updates, reset, and a saved state
(JSON, no pickle) that continues exactly where the original stood."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from monitors.base import Monitor, MonitorStateError, alarm_positions
from monitors.errors import AdwinMonitor, HddmMonitor
from monitors.features import PsiMonitor
from monitors.scores import ScoreMonitor

_RNG = random.Random(99)
REFERENCE = [_RNG.gauss(0, 1) for _ in range(10_000)]


@dataclass(frozen=True)
class Case:
    make: Callable[[], Monitor]
    #: one value of the monitored stream; ``shifted`` after an abrupt change
    draw: Callable[[random.Random, bool], float]


def _error(rng: random.Random, shifted: bool) -> float:
    return float(rng.random() < (0.3 if shifted else 0.1))


def _score(rng: random.Random, shifted: bool) -> float:
    return 1 / (1 + math.exp(-rng.gauss(0.5 if shifted else 0.0, 1.0)))


def _feature(rng: random.Random, shifted: bool) -> float:
    return rng.gauss(0.5 if shifted else 0.0, 1.0)


CASES = {
    "adwin": Case(AdwinMonitor, _error),
    "hddm_a": Case(HddmMonitor, _error),
    "score": Case(lambda: ScoreMonitor(reference_mean=0.0, reference_std=1.0), _score),
    "psi": Case(lambda: PsiMonitor.from_reference(REFERENCE), _feature),
}


def _stream(case: Case, seed: int, n: int, shift_at: int | None = None) -> list[float]:
    rng = random.Random(seed)
    return [case.draw(rng, shift_at is not None and i >= shift_at) for i in range(n)]


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


def test_a_restored_monitor_gives_the_same_future_outputs(case: Case) -> None:
    values = _stream(case, seed=1, n=12_000, shift_at=6_000)
    original = case.make()
    alarm_positions(original, values[:3_333])
    restored = type(original).from_state(json.loads(json.dumps(original.save())))
    future = values[3_333:]
    alarms = alarm_positions(original, future)
    assert alarms, "the shift after the save point is detected"
    assert alarm_positions(restored, future) == alarms
    assert restored.save() == original.save()


def test_a_state_saved_on_the_detecting_update_keeps_the_flag(case: Case) -> None:
    values = _stream(case, seed=2, n=12_000, shift_at=6_000)
    original = case.make()
    first = alarm_positions(original, values)[0]
    original = case.make()
    alarm_positions(original, values[: first + 1])
    restored = type(original).from_state(json.loads(json.dumps(original.save())))
    assert restored.drift_detected and original.drift_detected
    assert alarm_positions(restored, values[first + 1 :]) == alarm_positions(
        original, values[first + 1 :]
    )


def test_reset_starts_afresh(case: Case) -> None:
    values = _stream(case, seed=3, n=8_000, shift_at=4_000)
    monitor = case.make()
    alarm_positions(monitor, _stream(case, seed=4, n=5_000, shift_at=2_000))
    monitor.reset()
    assert alarm_positions(monitor, values) == alarm_positions(case.make(), values)


def test_a_stationary_stream_raises_almost_no_alarm(case: Case) -> None:
    # The defaults are calibrated for 500,000 events between false alarms: 0.4 expected in
    # 200,000 events, and a Poisson chance under 1 % of three or more.
    assert len(alarm_positions(case.make(), _stream(case, seed=5, n=200_000))) <= 2


def test_an_abrupt_shift_is_detected_after_it_and_not_before(case: Case) -> None:
    alarms = alarm_positions(case.make(), _stream(case, seed=6, n=10_000, shift_at=5_000))
    assert alarms, "the shift is detected"
    assert 5_000 <= alarms[0] < 7_000


def test_a_state_of_another_kind_is_refused(case: Case) -> None:
    other = next(c for c in CASES.values() if type(c.make()) is not type(case.make()))
    with pytest.raises(MonitorStateError):
        type(case.make()).from_state(other.make().save())
