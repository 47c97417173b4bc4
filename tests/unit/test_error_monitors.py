"""The error-stream monitors are two-sided: a concept drift may leave the model better, and the
error rate falls. The drift benchmark's Agrawal stream has one (classification function 0 → 6:
the online classifier's errors fall from about 0.3 to 0.06), which a one-sided HDDM_A missed on
every seed."""

from __future__ import annotations

import random

import pytest

from monitors.base import Monitor, alarm_positions
from monitors.errors import AdwinMonitor, HddmMonitor

CALM, AFTER = 5_000, 5_000


def _falling(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [float(rng.random() < (0.3 if i < CALM else 0.06)) for i in range(CALM + AFTER)]


@pytest.mark.parametrize("make", [AdwinMonitor, HddmMonitor], ids=["adwin", "hddm_a"])
@pytest.mark.parametrize("seed", range(3))
def test_a_falling_error_rate_is_detected_after_it_and_not_before(
    make: type[Monitor], seed: int
) -> None:
    alarms = alarm_positions(make(), _falling(seed))
    assert [a for a in alarms if a < CALM] == []
    assert any(CALM <= a < CALM + 500 for a in alarms), alarms
