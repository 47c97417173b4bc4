"""The synthetic stream: reproducible, with about 1 % fraud of every kind."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from stream_app.devtools.generator import DAY_MS, LabelledTransaction, TransactionGenerator
from stream_app.timing import now_ms

PATTERNS = {"card_testing", "unusual_category", "night_spike"}


def take(count: int, **options: float) -> list[LabelledTransaction]:
    return list(itertools.islice(TransactionGenerator(**options), count))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def day_and_night() -> list[LabelledTransaction]:
    """200k events an hour of event time apart per wall second: several days and nights."""
    return take(200_000, seed=42, time_scale=3600)


def test_same_seed_same_events() -> None:
    assert take(2000, seed=7) == take(2000, seed=7)
    assert take(200, seed=7) != take(200, seed=8)


def test_fraud_share(day_and_night: list[LabelledTransaction]) -> None:
    share = sum(g.is_fraud for g in day_and_night) / len(day_and_night)
    assert 0.005 <= share <= 0.02, share


def test_every_pattern_appears_and_labels_agree(day_and_night: list[LabelledTransaction]) -> None:
    counts = Counter(g.pattern for g in day_and_night)
    assert set(counts) == PATTERNS | {"legit"}
    assert all(counts[p] >= 20 for p in PATTERNS), counts
    assert all(g.is_fraud == (g.pattern != "legit") for g in day_and_night)


def test_event_time_moves_forward_and_ids_are_unique(
    day_and_night: list[LabelledTransaction],
) -> None:
    times = [g.event.event_time for g in day_and_night]
    assert all(a <= b for a, b in itertools.pairwise(times))
    hours = (times[-1] - times[0]) / 3_600_000
    assert hours > 48, "time_scale=3600 should cover days of event time"
    assert len({g.event.event_id for g in day_and_night}) == len(day_and_night)


def test_night_spikes_happen_at_night(day_and_night: list[LabelledTransaction]) -> None:
    hours = {
        g.event.event_time // 3_600_000 % 24 for g in day_and_night if g.pattern == "night_spike"
    }
    assert hours <= set(range(7)), hours  # started in a night hour, maybe ending just after


def test_card_testing_is_bursts_of_small_online_payments(
    day_and_night: list[LabelledTransaction],
) -> None:
    testing = [g.event for g in day_and_night if g.pattern == "card_testing"]
    assert all(e.channel == "ecom" and e.amount < 4 for e in testing)


def test_fraud_rate_parameter_is_checked() -> None:
    with pytest.raises(ValueError, match="fraud_rate"):
        TransactionGenerator(fraud_rate=0.5)


@pytest.mark.parametrize("time_scale", [60.0, 3600.0])
def test_a_history_ends_at_its_end_and_keeps_its_hours(time_scale: float) -> None:
    """``ending_at``: the last of N events is in the day before the end, never after it, and
    the history is the one from any other start moved by whole days (night stays night)."""
    end = 2_000_000_000_123  # any clock: 2033
    history = list(
        itertools.islice(
            TransactionGenerator.ending_at(5000, end, seed=5, time_scale=time_scale), 5000
        )
    )
    assert end - DAY_MS < history[-1].event.event_time <= end
    other = take(5000, seed=5, time_scale=time_scale, start_ms=1_767_225_600_000)
    shift = history[0].event.event_time - other[0].event.event_time
    assert shift % DAY_MS == 0
    assert [g.event.event_time - shift for g in history] == [g.event.event_time for g in other]
    assert [(g.event.card_id, g.pattern) for g in history] == [
        (g.event.card_id, g.pattern) for g in other
    ]


def test_the_default_history_starts_yesterday() -> None:
    first = take(1)[0].event.event_time
    today = now_ms() // DAY_MS * DAY_MS
    assert today - DAY_MS <= first < today
