"""The accepted event-time window, the retention floor and the plausibility rules, on a clock the
test sets (any date: nothing here reads the wall clock)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stream_app.errors import CodecError
from stream_app.event_checks import DAY_MS, NO_TIMESTAMP, EventChecks
from stream_app.events import Transaction
from stream_app.settings import Settings

NOW = 2_000_000_000_000  # 2033: the checks follow the clock they are given
SKEW = 300_000
LATENESS = 30 * DAY_MS
RETENTION = 365 * DAY_MS
CHECKS = EventChecks(SKEW, LATENESS, RETENTION, 1e6, clock=lambda: NOW)


def event(event_time: int, amount: float = 10.0, card: str = "c1") -> Transaction:
    return Transaction("e", card, "m", "fuel", amount, "EUR", "pos", "FR", "FR", event_time)


def reason(tx: Transaction, stamp: int = NOW, key: bytes | None = b"c1", kind: int = 1) -> str:
    try:
        CHECKS.check(tx, key, (kind, stamp))
    except CodecError as exc:
        return exc.reason
    return "accepted"


@pytest.mark.parametrize(
    ("event_time", "stamp", "expected"),
    [
        (NOW, NOW, "accepted"),
        (NOW + SKEW, NOW, "accepted"),
        (NOW + SKEW + 1, NOW, "event_time_in_future"),
        (NOW - DAY_MS + SKEW, NOW - DAY_MS, "accepted"),  # relative to the record's timestamp
        (NOW - DAY_MS + SKEW + 1, NOW - DAY_MS, "event_time_in_future"),
        (NOW + DAY_MS, NOW + DAY_MS, "event_time_in_future"),  # a timestamp ahead counts as now
        (2**62, NOW, "event_time_in_future"),
        (NOW - LATENESS, NOW, "accepted"),
        (NOW - LATENESS - 1, NOW, "event_time_too_old"),
        (NOW - 40 * DAY_MS, NOW - 20 * DAY_MS, "accepted"),  # a backlog replayed later
        (NOW - RETENTION + DAY_MS, NOW - RETENTION + DAY_MS, "accepted"),
        # a timestamp as old as the event: the warehouse would drop it within a day
        (NOW - RETENTION + DAY_MS - 1, NOW - RETENTION + DAY_MS - 1, "event_time_too_old"),
        (1, NOW, "event_time_too_old"),
    ],
)
def test_event_time_window(event_time: int, stamp: int, expected: str) -> None:
    assert reason(event(event_time), stamp) == expected


def test_a_record_without_timestamp_is_judged_by_the_clock() -> None:
    assert reason(event(NOW - DAY_MS), stamp=-1, kind=NO_TIMESTAMP) == "accepted"
    assert reason(event(NOW + SKEW + 1), stamp=-1, kind=NO_TIMESTAMP) == "event_time_in_future"


def test_amount_and_key() -> None:
    assert reason(event(NOW, amount=1e6)) == "accepted"
    assert reason(event(NOW, amount=1e308)) == "amount_implausible"
    assert reason(event(NOW), key=b"c2") == "key_mismatch"
    assert reason(event(NOW), key=None) == "key_mismatch"


def test_settings_give_the_window_and_keep_lateness_inside_retention() -> None:
    checks = EventChecks.from_settings(Settings(), clock=lambda: NOW)
    assert (checks.future_skew_ms, checks.lateness_ms, checks.retention_ms) == (
        SKEW,
        LATENESS,
        RETENTION,
    )
    assert checks.max_amount == 1_000_000.0
    with pytest.raises(ValidationError, match="retention_days - 1"):
        Settings(retention_days=10, event_time_lateness_days=9.5)
