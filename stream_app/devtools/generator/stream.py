"""Seeded synthetic card transactions with the structure of real fraud (``docs/synthetic-data.md``).

Cards pay at the terminals near home and at a few online merchants, around their own mean amount,
mostly in the daytime (``population``). About ``fraud_rate`` of events are fraud, of six kinds:
after the handbook's simulator, compromised terminals (every payment there is fraud for a while),
compromised cards (a third of the card's next payments, at inflated amounts) and amounts above a
threshold; after the fraud teams' usual suspects, card-testing bursts, night-time spikes and
risky categories abroad. A drift schedule (``drift``) changes the mix at known event indices.

Event time advances by ``time_scale`` seconds per wall second at the nominal rate, so a demo
covers hours in minutes. That compressed history ends at the wall clock, never after it
(``TransactionGenerator.ending_at``): workers check event times against the records' broker
timestamps (``stream_app.event_checks``).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

from stream_app.devtools.generator.drift import AppliedDrift, DriftPoint, Regime
from stream_app.devtools.generator.population import (
    COUNTRIES,
    CURRENCY,
    FAR_COUNTRIES,
    MEAN_AMOUNT,
    Customer,
    Population,
    Terminal,
    legit_amount,
)
from stream_app.events import Transaction
from stream_app.timing import now_ms

DAY_MS = 86_400_000
NIGHT_HOURS = range(0, 6)
#: share of events in night hours (a third of the daytime rate for a quarter of the day)
NIGHT_EVENT_SHARE = 2.0 / 20.0
#: a compromised terminal: its next 10..30 payments are fraud
TERMINAL_WINDOW = (10, 30)
#: a compromised card: a third of its next 6..18 payments are fraud, at 2.5..6 x the card's
#: mean amount (for the terminal's category)
CARD_WINDOW = (6, 18)
CARD_FRAUD_SHARE = 1.0 / 3.0
CARD_AMOUNT = (2.5, 6.0)
#: the amount threshold of the handbook's first scenario, and the band fraud pays above it
LARGE_AMOUNT = (220.0, 900.0)
#: events per episode of each pattern, on average (the start probability divides by it)
EPISODE_EVENTS = {
    "compromised_terminal": sum(TERMINAL_WINDOW) / 2,
    "compromised_card": sum(CARD_WINDOW) / 2 * CARD_FRAUD_SHARE,
    "card_testing": 3.5,
}


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
    drift: Sequence[DriftPoint]
    population_seed: int | None


class TransactionGenerator:
    """An endless, reproducible stream of :class:`LabelledTransaction`.

    ``start_ms`` defaults to the UTC midnight of the day before the clock's ``now``; shifting it
    by whole days shifts every event time by as much and changes nothing else.
    ``population_seed`` draws the cards and terminals (default: ``seed``, which then draws the
    events too): streams of other seeds over one population are the same customers paying, as a
    model's training data and the live stream it scores are.

    >>> gen = TransactionGenerator(seed=7, start_ms=1_700_000_000_000)
    >>> first = next(iter(gen))
    >>> first.event.card_id, first.is_fraud
    ('card-001800', False)
    """

    def __init__(
        self,
        seed: int = 42,
        fraud_rate: float = 0.01,
        cards: int = 5000,
        start_ms: int | None = None,
        nominal_rate: float = 1000.0,
        time_scale: float = 60.0,
        drift: Sequence[DriftPoint] = (),
        population_seed: int | None = None,
    ) -> None:
        if not 0.0 <= fraud_rate < 0.5:
            raise ValueError("fraud_rate must be in [0, 0.5)")
        if start_ms is None:
            today = now_ms() // DAY_MS * DAY_MS
            start_ms = today - DAY_MS
        self._options = GeneratorOptions(
            seed=seed,
            fraud_rate=fraud_rate,
            cards=cards,
            nominal_rate=nominal_rate,
            time_scale=time_scale,
            drift=drift,
            population_seed=population_seed,
        )
        self._rng = random.Random(seed)  # noqa: S311  # synthetic data, not security
        self._fraud_rate = fraud_rate
        self._start_ms = start_ms
        self._elapsed_ms = 0.0  # kept apart from start_ms: a shift by days changes no rounding
        self._mean_gap_ms = 1000.0 * time_scale / nominal_rate
        self._seed = seed
        people = self._rng
        if population_seed not in (None, seed):
            people = random.Random(population_seed)  # noqa: S311  # synthetic data
        self._population = Population.generate(people, cards)
        self._online_by_category: dict[str, list[Terminal]] = {}
        for terminal in self._population.online:
            self._online_by_category.setdefault(terminal.category, []).append(terminal)
        self._count = 0
        self._pending: list[LabelledTransaction] = []
        self._compromised_terminals: dict[str, int] = {}
        self._compromised_cards: dict[str, int] = {}
        self._drift = deque(sorted(drift, key=lambda p: p.index))
        self._applied: list[AppliedDrift] = []
        self._set_regime(Regime())
        self._compromise_at_start()

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

    def drift_points(self) -> tuple[AppliedDrift, ...]:
        """Where this generator's drift points fall (event index and event time of their first
        event): those it has passed, or else found on a twin, so it does not consume this stream.

        >>> from stream_app.devtools.generator.drift import drift_schedule
        >>> schedule = drift_schedule("pattern-moves", 1000)
        >>> gen = TransactionGenerator(seed=1, start_ms=0, drift=schedule)
        >>> [(p.index, p.name.split()[0]) for p in gen.drift_points()]
        [(500, 'risky-abroad')]
        """
        if not self._drift:
            return tuple(self._applied)
        twin = TransactionGenerator(start_ms=self._start_ms, **self._options)
        stream = iter(twin)
        while twin._drift:
            next(stream)
        return tuple(twin._applied)

    def __iter__(self) -> Iterator[LabelledTransaction]:
        while True:
            if not self._pending:
                index = self._count
                drifted = bool(self._drift) and self._drift[0].index <= index
                if drifted:
                    point = self._drift.popleft()
                    self._set_regime(point.regime)
                self._pending = self._next_group()[::-1]
                if drifted:
                    time = self._pending[-1].event.event_time
                    self._applied.append(AppliedDrift(index, time, point.name))
            yield self._pending.pop()

    def _set_regime(self, regime: Regime) -> None:
        """The regime, and per time of day the probability that an event starts each pattern."""
        self._regime = regime
        self._starts: dict[bool, list[tuple[float, str]]] = {}
        for night in (False, True):
            cumulative, table = 0.0, []
            for pattern, share in regime.fraud_mix:
                if pattern == "night_spike":
                    share = share / NIGHT_EVENT_SHARE if night else 0.0
                cumulative += self._fraud_rate * share / EPISODE_EVENTS.get(pattern, 1.0)
                table.append((cumulative, pattern))
            self._starts[night] = table
        population, tilt = self._population, regime.spend_tilt
        weights = (
            rate * (card.mean_amount / MEAN_AMOUNT) ** tilt
            for rate, card in zip(population.activity, population.customers, strict=True)
        )
        self._activity = list(itertools.accumulate(weights))

    def _compromise_at_start(self) -> None:
        """The terminals and cards already compromised when the stream starts, as many as in the
        steady state (a compromise lasts a number of the terminal's or card's payments; busy
        ones are picked as often as they pay): the fraud share does not ramp up."""
        rng = self._rng
        mix = dict(self._regime.fraud_mix)
        online = self._regime.ecom_share
        terminals = self._population.terminals / max(1.0 - online, 0.01)
        for _ in range(round(self._fraud_rate * mix.get("compromised_terminal", 0.0) * terminals)):
            terminal = rng.choice(self._pick_card().physical)
            self._compromised_terminals[terminal.merchant_id] = rng.randint(1, TERMINAL_WINDOW[1])
        cards = len(self._population.customers) / CARD_FRAUD_SHARE
        for _ in range(round(self._fraud_rate * mix.get("compromised_card", 0.0) * cards)):
            self._compromised_cards[self._pick_card().card_id] = rng.randint(1, CARD_WINDOW[1])

    def _pick_card(self) -> Customer:
        """A card, busy ones more often."""
        index = bisect.bisect(self._activity, self._rng.random() * self._activity[-1])
        return self._population.customers[index]

    def _hour(self) -> int:
        return int((self._start_ms % DAY_MS + self._elapsed_ms) // 3_600_000 % 24)

    def _advance(self, mean_gap_ms: float) -> int:
        night = self._hour() in NIGHT_HOURS
        self._elapsed_ms += self._rng.expovariate(1.0 / (mean_gap_ms * (3.0 if night else 1.0)))
        return self._start_ms + int(self._elapsed_ms)

    def _next_group(self) -> list[LabelledTransaction]:
        """One event, or the events of one fraud episode (a burst is several)."""
        rng = self._rng
        card = self._pick_card()
        draw = rng.random()
        for cumulative, pattern in self._starts[self._hour() in NIGHT_HOURS]:
            if draw < cumulative:
                return self._episode(pattern, card)
        return [self._usual(card)]

    def _episode(self, pattern: str, card: Customer) -> list[LabelledTransaction]:
        rng = self._rng
        if pattern == "compromised_terminal":
            terminal = rng.choice(card.physical)
            self._compromised_terminals[terminal.merchant_id] = rng.randint(*TERMINAL_WINDOW)
            return [self._usual(card, terminal)]
        if pattern == "compromised_card":
            self._compromised_cards[card.card_id] = rng.randint(*CARD_WINDOW)
            return [self._usual(card)]
        if pattern == "card_testing":
            return [self._card_test(card) for _ in range(rng.randint(2, 5))]
        return [self._single_fraud(pattern, card)]

    def _make(
        self,
        card: Customer,
        terminal: Terminal,
        amount: float,
        time_ms: int,
        pattern: str,
        country: str | None = None,
    ) -> LabelledTransaction:
        self._count += 1
        merchant_country = country or terminal.country
        event = Transaction(
            event_id=f"{self._seed:x}-{self._count:09d}",
            card_id=card.card_id,
            merchant_id=terminal.merchant_id,
            merchant_category=terminal.category,
            amount=round(max(amount, 0.01), 2),
            currency=CURRENCY.get(merchant_country, "EUR"),
            channel=terminal.channel,
            card_country=card.country,
            merchant_country=merchant_country,
            event_time=time_ms,
        )
        return LabelledTransaction(event, pattern != "legit", pattern)

    def _usual(self, card: Customer, terminal: Terminal | None = None) -> LabelledTransaction:
        """A payment as the card pays, which is fraud on a compromised terminal or card."""
        rng = self._rng
        if terminal is None:
            online = rng.random() < self._regime.ecom_share
            terminal = rng.choice(card.online if online else card.physical)
        amount = legit_amount(rng, card, terminal.amount_scale)
        habit = rng.random()
        if habit < 0.04:  # app-store style micro-payments look like card testing
            terminal = rng.choice(self._online_by_category["digital_goods"])
            amount = rng.uniform(0.5, 5.0)
        elif habit < 0.06:  # the occasional big purchase
            amount *= rng.uniform(3.0, 12.0)
        pattern = "legit"
        left = self._compromised_terminals.get(terminal.merchant_id, 0)
        if left:
            self._compromised_terminals[terminal.merchant_id] = left - 1
            pattern = "compromised_terminal"
        left = self._compromised_cards.get(card.card_id, 0)
        if left:
            self._compromised_cards[card.card_id] = left - 1
            if rng.random() < CARD_FRAUD_SHARE:
                amount = card.mean_amount * terminal.amount_scale * rng.uniform(*CARD_AMOUNT)
                pattern = "compromised_card"
        return self._make(card, terminal, amount, self._advance(self._mean_gap_ms), pattern)

    def _card_test(self, card: Customer) -> LabelledTransaction:
        rng = self._rng
        category = rng.choice(("digital_goods", "online_retail", "gaming"))
        amount = rng.choice((0.5, 1.0, 1.0, 2.0)) + rng.choice((0.0, 0.0, 0.01, 0.99))
        time_ms = self._advance(self._mean_gap_ms / 10)
        terminal = rng.choice(self._online_by_category[category])
        country = rng.choice(COUNTRIES + FAR_COUNTRIES)
        return self._make(card, terminal, amount, time_ms, "card_testing", country)

    def _single_fraud(self, pattern: str, card: Customer) -> LabelledTransaction:
        """One fraudulent payment: large amount, night spike, risky abroad or gift cards."""
        rng = self._rng
        regime = self._regime
        country = None
        if pattern == "large_amount":
            terminal = rng.choice(card.physical + card.online)
            amount = rng.uniform(*LARGE_AMOUNT)
        elif pattern == "night_spike":
            category = rng.choice(("atm", "electronics", "jewelry", "gaming", "digital_goods"))
            terminal = self._far_terminal(category, "atm" if category == "atm" else "ecom")
            amount = card.mean_amount * rng.uniform(3.0, 10.0)
            country = rng.choice((card.country, *FAR_COUNTRIES))
        elif pattern == "risky_abroad":
            channel = "ecom" if rng.random() < 0.7 else "pos"
            terminal = self._far_terminal(rng.choice(regime.risky_categories), channel)
            amount = card.mean_amount * rng.uniform(*regime.risky_amount)
            country = rng.choice(regime.risky_countries)
        else:  # gift_cards: domestic digital goods, far above what the card spends there
            terminal = rng.choice(self._online_by_category["digital_goods"])
            amount = rng.uniform(50.0, 150.0)
            country = card.country
        return self._make(
            card, terminal, amount, self._advance(self._mean_gap_ms), pattern, country
        )

    def _far_terminal(self, category: str, channel: str) -> Terminal:
        """A terminal no customer of the map uses (its country is set per payment)."""
        number = self._rng.randrange(100)
        return Terminal(f"m-{category[:4]}-x{number:03d}", category, "", channel, 1.0)
