"""The error-stream monitors are two-sided: a concept drift may leave the model better, and the
error rate falls. The drift benchmark's Agrawal stream has one (classification function 0 → 6:
the online classifier's errors fall from about 0.3 to 0.06), which a one-sided HDDM_A missed on
every seed."""

from __future__ import annotations

import random

import pytest

from monitors.base import Monitor, alarm_positions
from monitors.errors import AdwinMonitor, HddmMonitor
from stream_app.error_stream.job import monitor_errors
from stream_app.errors import ConfigError
from stream_app.settings import Settings

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


@pytest.mark.parametrize(
    "content",
    [
        b"\xff",
        b"{not json",
        b"[]",
        b'{"cursor": [1, "e"]}',
        b'{"cursor": [1, "e"], "versions": {"1": [{"kind": "adwin"}, {}]}}',
    ],
    ids=str,
)
def test_a_damaged_state_file_is_one_clear_error_before_any_query(tmp_path, content) -> None:
    """`stream-app monitor-errors` on a state file it cannot read: an error that names the file
    and says how to start again, before it asks the warehouse anything (none is running here)."""
    state = tmp_path / "error-monitor.json"
    state.write_bytes(content)
    settings = Settings(error_monitor_state=state, warehouse_dsn="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match=f"the error monitors' state {state} cannot be read"):
        monitor_errors(settings)
