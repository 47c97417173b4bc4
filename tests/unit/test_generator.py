"""The synthetic stream: reproducible, about 1 % fraud of every kind, each kind shaped as
``docs/synthetic-data.md`` says."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import pytest

from stream_app.devtools.generator import DAY_MS, LabelledTransaction, TransactionGenerator
from stream_app.devtools.generator.drift import PATTERNS
from stream_app.devtools.generator.stream import LARGE_AMOUNT, TERMINAL_WINDOW
from stream_app.timing import now_ms

DEFAULT_PATTERNS = set(PATTERNS) - {"gift_cards"}  # gift cards come only with a drift


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
    assert 0.008 <= share <= 0.013, share


def test_the_fraud_share_does_not_ramp_up() -> None:
    """Compromised terminals and cards are in their steady state from the first event on: the
    first tenth of a stream has as much of their fraud as the last tenth."""
    stream = take(100_000, seed=3, time_scale=600)
    lasting = ("compromised_terminal", "compromised_card")
    first = sum(g.pattern in lasting for g in stream[:10_000])
    last = sum(g.pattern in lasting for g in stream[-10_000:])
    assert first >= 0.6 * last > 0, (first, last)


def test_every_pattern_appears_and_labels_agree(day_and_night: list[LabelledTransaction]) -> None:
    counts = Counter(g.pattern for g in day_and_night)
    assert set(counts) == DEFAULT_PATTERNS | {"legit"}
    assert all(counts[p] >= 100 for p in DEFAULT_PATTERNS), counts
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


def test_large_amounts_are_above_the_threshold_and_so_are_some_legitimate_ones(
    day_and_night: list[LabelledTransaction],
) -> None:
    large = [g.event.amount for g in day_and_night if g.pattern == "large_amount"]
    assert min(large) >= LARGE_AMOUNT[0]
    legit_large = sum(g.event.amount >= LARGE_AMOUNT[0] for g in day_and_night if not g.is_fraud)
    assert legit_large > len(large), "the threshold alone must not separate fraud"


def test_a_compromised_terminal_takes_every_payment_for_a_while(
    day_and_night: list[LabelledTransaction],
) -> None:
    """On a terminal, compromised payments come in runs (no legitimate payment in between) of
    at most the window's length, and the terminal served legitimate payments before or after."""
    by_terminal: dict[str, list[str]] = defaultdict(list)
    for g in day_and_night:
        by_terminal[g.event.merchant_id].append(g.pattern)
    runs = []
    for patterns in by_terminal.values():
        if "compromised_terminal" in patterns:
            assert "legit" in patterns
            for hit, group in itertools.groupby(patterns, lambda p: p != "legit"):
                run = list(group)
                if hit and "compromised_terminal" in run:
                    runs.append(len(run))
    assert runs and max(runs) <= TERMINAL_WINDOW[1] + 2, runs  # + a stolen card paying there
    assert sum(runs) / len(runs) >= 5, runs


def test_a_compromised_card_pays_normally_in_between(
    day_and_night: list[LabelledTransaction],
) -> None:
    """About a third of a compromised card's payments during the compromise are fraud, each far
    above the card's legitimate payments."""
    by_card: dict[str, list[LabelledTransaction]] = defaultdict(list)
    for g in day_and_night:
        by_card[g.event.card_id].append(g)
    fraud = legit = above = 0
    for history in by_card.values():
        hits = [i for i, g in enumerate(history) if g.pattern == "compromised_card"]
        if hits:
            during = history[hits[0] : hits[-1] + 1]
            fraud += len(hits)
            legit += sum(g.pattern == "legit" for g in during)
            usual = sorted(g.event.amount for g in history if g.pattern == "legit")
            median = usual[len(usual) // 2]
            above += sum(history[i].event.amount > 2 * median for i in hits)
    assert 0.2 <= fraud / (fraud + legit) <= 0.6, (fraud, legit)
    assert above >= 0.75 * fraud, (above, fraud)


def test_cards_pay_near_home(day_and_night: list[LabelledTransaction]) -> None:
    """In person, a card pays at a handful of terminals, mostly in its own country."""
    terminals: dict[str, set[str]] = defaultdict(set)
    abroad = in_person = 0
    for g in day_and_night:
        e = g.event
        if not g.is_fraud and e.channel == "pos":
            terminals[e.card_id].add(e.merchant_id)
            in_person += 1
            abroad += e.card_country != e.merchant_country
    assert max(len(t) for t in terminals.values()) <= 60
    assert 0.0 < abroad / in_person < 0.3, abroad / in_person


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


def test_a_population_seed_keeps_the_cards_and_terminals_and_draws_other_events() -> None:
    def first(n: int, **options: int) -> list[LabelledTransaction]:
        return list(itertools.islice(TransactionGenerator(start_ms=0, **options), n))

    # the default (and the seed itself) is the seed's own population: the stream is unchanged
    assert first(50, seed=3) == first(50, seed=3, population_seed=3)
    own, other = TransactionGenerator(seed=1), TransactionGenerator(seed=42, population_seed=1)
    assert own._population == other._population
    assert own._population != TransactionGenerator(seed=42)._population
    assert first(50, seed=42, population_seed=1) != first(50, seed=1)
