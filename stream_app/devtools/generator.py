"""Seeded synthetic card transactions with the structure of real fraud.

Legitimate cards buy from a few habitual merchant categories, in their home country, around a
typical amount, mostly in the daytime. About 1 % of events are fraud, of three kinds: card-testing
bursts (several tiny online payments on one card within seconds), a large amount in a category the
card never uses (often abroad), and night-time cash or online spikes. Event time advances by
``time_scale`` seconds per wall second at the nominal rate, so a demo covers hours in minutes.
That compressed history ends at the wall clock, never after it (``TransactionGenerator.ending_at``):
workers check event times against the records' broker timestamps (``stream_app.event_checks``).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypedDict, Unpack

from stream_app.events import Transaction
from stream_app.features import CATEGORIES
from stream_app.timing import now_ms

DAY_MS = 86_400_000

RISKY_CATEGORIES = ("electronics", "jewelry", "gaming", "digital_goods")
COUNTRIES = ("FR", "DE", "ES", "IT", "NL", "BE", "GB", "US", "PL", "PT")
FAR_COUNTRIES = ("NG", "RU", "BR", "ID", "VN")
CURRENCY = {"GB": "GBP", "US": "USD", "PL": "PLN"}
NIGHT_HOURS = range(0, 6)


@dataclass(frozen=True, slots=True)
class LabelledTransaction:
    """A generated event with the ground truth the generator knows."""

    event: Transaction
    is_fraud: bool
    pattern: str


class GeneratorOptions(TypedDict, total=False):
    """The arguments of :class:`TransactionGenerator` other than its start."""

    seed: int
    fraud_rate: float
    cards: int
    nominal_rate: float
    time_scale: float


@dataclass(frozen=True, slots=True)
class _Card:
    card_id: str
    country: str
    habits: tuple[str, ...]
    typical_amount: float


class TransactionGenerator:
    """An endless, reproducible stream of :class:`LabelledTransaction`.

    ``start_ms`` defaults to the UTC midnight of the day before the clock's ``now``; shifting it
    by whole days shifts every event time by as much and changes nothing else.

    >>> gen = TransactionGenerator(seed=7, start_ms=1_700_000_000_000)
    >>> first = next(iter(gen))
    >>> first.event.card_id, first.is_fraud
    ('card-004849', False)
    """

    def __init__(
        self,
        seed: int = 42,
        fraud_rate: float = 0.01,
        cards: int = 5000,
        start_ms: int | None = None,
        nominal_rate: float = 1000.0,
        time_scale: float = 60.0,
    ) -> None:
        if not 0.0 <= fraud_rate < 0.5:
            raise ValueError("fraud_rate must be in [0, 0.5)")
        if start_ms is None:
            today = now_ms() // DAY_MS * DAY_MS
            start_ms = today - DAY_MS
        self._rng = random.Random(seed)  # noqa: S311  # synthetic data, not security
        self._fraud_rate = fraud_rate
        self._start_ms = start_ms
        self._elapsed_ms = 0.0  # kept apart from start_ms: a shift by days changes no rounding
        self._mean_gap_ms = 1000.0 * time_scale / nominal_rate
        self._seed = seed
        self._cards = [self._new_card(i) for i in range(cards)]
        self._count = 0
        self._pending: list[LabelledTransaction] = []

    def _new_card(self, index: int) -> _Card:
        rng = self._rng
        habits = tuple(rng.sample(CATEGORIES[:9], k=3))
        return _Card(
            card_id=f"card-{index:06d}",
            country=rng.choice(COUNTRIES),
            habits=habits,
            typical_amount=math.exp(rng.gauss(3.3, 0.6)),
        )

    @classmethod
    def ending_at(
        cls, events: int, end_ms: int | None = None, **options: Unpack[GeneratorOptions]
    ) -> TransactionGenerator:
        """A generator whose first ``events`` events end in the day before ``end_ms`` (default:
        now), never after it: the history is generated once to measure it, then moved back by
        whole days (so hours of the day, night-time fraud included, stay what they were).

        >>> gen = TransactionGenerator.ending_at(500, end_ms=1_800_000_000_000, seed=3)
        >>> times = [g.event.event_time for g in itertools.islice(gen, 500)]
        >>> 1_800_000_000_000 - DAY_MS < times[-1] <= 1_800_000_000_000
        True
        """
        end = now_ms() if end_ms is None else end_ms
        first_start = end // DAY_MS * DAY_MS
        trial = cls(start_ms=first_start, **options)
        last = deque(itertools.islice(trial, events), maxlen=1)
        overshoot = last[0].event.event_time - end if last else 0
        days_back = max(0, -(-overshoot // DAY_MS))
        return cls(start_ms=first_start - days_back * DAY_MS, **options)

    def __iter__(self) -> Iterator[LabelledTransaction]:
        while True:
            if not self._pending:
                self._pending = self._next_group()[::-1]
            yield self._pending.pop()

    def _hour(self) -> int:
        return int((self._start_ms % DAY_MS + self._elapsed_ms) // 3_600_000 % 24)

    def _advance(self, mean_gap_ms: float) -> int:
        night = self._hour() in NIGHT_HOURS
        self._elapsed_ms += self._rng.expovariate(1.0 / (mean_gap_ms * (3.0 if night else 1.0)))
        return self._start_ms + int(self._elapsed_ms)

    def _next_group(self) -> list[LabelledTransaction]:
        """One legitimate event, or one fraud episode (a burst is several events)."""
        rng = self._rng
        card = rng.choice(self._cards)
        night = self._hour() in NIGHT_HOURS
        # Night carries a larger share of fraud, the day a smaller one: ~fraud_rate over a day
        # (night has a third of the day's traffic). Dividing by the mean episode length turns
        # a share of events into a probability of starting an episode.
        weights = (2, 3, 5) if night else (2, 5, 0)
        episode_events = (weights[0] * 4.5 + weights[1] + weights[2]) / sum(weights)
        fraud_p = self._fraud_rate * (3.0 if night else 0.75) / episode_events
        if rng.random() >= fraud_p:
            return [self._legit(card)]
        pattern = rng.choices(("card_testing", "unusual_category", "night_spike"), weights)[0]
        if pattern == "card_testing":
            return [self._card_testing(card) for _ in range(rng.randint(3, 6))]
        if pattern == "unusual_category":
            return [self._unusual(card)]
        return [self._night_spike(card)]

    def _make(
        self,
        card: _Card,
        category: str,
        amount: float,
        channel: str,
        country: str,
        time_ms: int,
        fraud: bool,
        pattern: str,
    ) -> LabelledTransaction:
        self._count += 1
        event = Transaction(
            event_id=f"{self._seed:x}-{self._count:09d}",
            card_id=card.card_id,
            merchant_id=f"m-{category[:4]}-{self._rng.randrange(400):03d}",
            merchant_category=category,
            amount=round(max(amount, 0.01), 2),
            currency=CURRENCY.get(country, "EUR"),
            channel=channel,
            card_country=card.country,
            merchant_country=country,
            event_time=time_ms,
        )
        return LabelledTransaction(event, fraud, pattern)

    def _legit(self, card: _Card) -> LabelledTransaction:
        rng = self._rng
        category = rng.choice(card.habits) if rng.random() < 0.9 else rng.choice(CATEGORIES)
        channel = "atm" if category == "atm" else ("ecom" if rng.random() < 0.25 else "pos")
        country = card.country if rng.random() < 0.95 else rng.choice(COUNTRIES)
        amount = card.typical_amount * math.exp(rng.gauss(0.0, 0.5))
        habit = rng.random()
        if habit < 0.05:  # app-store style micro-payments look like card testing
            category, channel, amount = "digital_goods", "ecom", rng.uniform(0.5, 5.0)
        elif habit < 0.07:  # the occasional big purchase or trip
            category = rng.choice(("electronics", "travel", "jewelry"))
            amount = card.typical_amount * rng.uniform(3.0, 15.0)
        return self._make(
            card,
            category,
            amount,
            channel,
            country,
            self._advance(self._mean_gap_ms),
            False,
            "legit",
        )

    def _card_testing(self, card: _Card) -> LabelledTransaction:
        rng = self._rng
        amount = rng.choice((0.5, 1.0, 1.0, 2.0)) + rng.choice((0.0, 0.0, 0.01, 0.99))
        return self._make(
            card,
            rng.choice(("digital_goods", "online_retail", "gaming")),
            amount,
            "ecom",
            rng.choice(COUNTRIES + FAR_COUNTRIES),
            self._advance(self._mean_gap_ms / 20),
            True,
            "card_testing",
        )

    def _unusual(self, card: _Card) -> LabelledTransaction:
        rng = self._rng
        category = rng.choice([c for c in RISKY_CATEGORIES if c not in card.habits])
        amount = card.typical_amount * rng.uniform(2.0, 12.0)
        country = card.country if rng.random() < 0.4 else rng.choice(FAR_COUNTRIES)
        channel = "ecom" if rng.random() < 0.7 else "pos"
        return self._make(
            card,
            category,
            amount,
            channel,
            country,
            self._advance(self._mean_gap_ms),
            True,
            "unusual_category",
        )

    def _night_spike(self, card: _Card) -> LabelledTransaction:
        rng = self._rng
        channel = rng.choice(("atm", "ecom"))
        category = "atm" if channel == "atm" else rng.choice(RISKY_CATEGORIES)
        amount = card.typical_amount * rng.uniform(3.0, 10.0)
        return self._make(
            card,
            category,
            amount,
            channel,
            rng.choice((card.country, *FAR_COUNTRIES)),
            self._advance(self._mean_gap_ms),
            True,
            "night_spike",
        )
