"""Who pays where: customers (cards) and terminals (merchants) on a map, after the simulator of
the "Reproducible Machine Learning for Credit Card Fraud Detection" handbook (Le Borgne et al.).

Terminals stand at a point of a 100 x 100 grid; the grid is cut into ten countries (five columns,
two rows), so a point's country is where it stands. A customer lives at a point too, with a
spending mean and standard deviation and a number of transactions per day, and pays at the
physical terminals within ``RADIUS`` of home (a customer near a border shops abroad now and
then) or at a few online merchants, half of them domestic.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import numpy as np

COUNTRIES = ("FR", "DE", "ES", "IT", "NL", "BE", "GB", "US", "PL", "PT")
#: countries off the map: no customer lives there, some fraud is paid there
FAR_COUNTRIES = ("NG", "RU", "BR", "ID", "VN")
CURRENCY = {"GB": "GBP", "US": "USD", "PL": "PLN", "BR": "BRL", "RU": "RUB", "NG": "NGN"}
GRID = 100.0
RADIUS = 5.0
#: physical terminals per card (the handbook has two)
TERMINALS_PER_CARD = 0.4
ONLINE_MERCHANTS = 300
#: customers' mean amounts are drawn from U(5, 100): their average
MEAN_AMOUNT = 52.5
ONLINE_PER_CARD = 4
#: category of a physical terminal (weights), of an online merchant, and how a category scales
#: the customer's usual amount
PHYSICAL_CATEGORIES = {
    "grocery": 30,
    "restaurant": 20,
    "fuel": 10,
    "pharmacy": 8,
    "clothing": 8,
    "entertainment": 5,
    "utilities": 4,
    "travel": 3,
    "electronics": 3,
    "jewelry": 1,
    "atm": 8,
}
ONLINE_CATEGORIES = {
    "online_retail": 40,
    "digital_goods": 15,
    "gaming": 10,
    "travel": 10,
    "entertainment": 10,
    "electronics": 10,
    "utilities": 5,
}
AMOUNT_SCALE = {
    "grocery": 1.0,
    "restaurant": 0.8,
    "fuel": 1.2,
    "pharmacy": 0.6,
    "clothing": 1.5,
    "entertainment": 0.9,
    "utilities": 1.4,
    "travel": 2.5,
    "electronics": 2.5,
    "jewelry": 3.0,
    "atm": 2.0,
    "online_retail": 1.1,
    "digital_goods": 0.3,
    "gaming": 0.5,
}


def country_at(x: float, y: float) -> str:
    """The country of a point of the grid.

    >>> country_at(0.0, 0.0), country_at(99.9, 99.9), country_at(45.0, 60.0)
    ('FR', 'PT', 'US')
    """
    column = min(int(x // (GRID / 5)), 4)
    row = min(int(y // (GRID / 2)), 1)
    return COUNTRIES[column + 5 * row]


@dataclass(frozen=True, slots=True)
class Terminal:
    """A merchant's terminal: where it stands (its country) and what it sells."""

    merchant_id: str
    category: str
    country: str
    channel: str
    amount_scale: float


@dataclass(frozen=True, slots=True)
class Customer:
    """A card: home country, spending habit, and the terminals it pays at."""

    card_id: str
    country: str
    mean_amount: float
    std_amount: float
    physical: tuple[Terminal, ...]
    online: tuple[Terminal, ...]


@dataclass(frozen=True, slots=True)
class Population:
    """The cards with their activity (transactions per day), the online merchants and the
    number of physical terminals."""

    customers: tuple[Customer, ...]
    activity: tuple[float, ...]
    online: tuple[Terminal, ...]
    terminals: int

    @classmethod
    def generate(cls, rng: random.Random, cards: int) -> Population:
        """Terminals, then customers with their nearby terminals; seeded by ``rng``."""
        count = max(1, round(cards * TERMINALS_PER_CARD))
        points = np.array([(rng.uniform(0, GRID), rng.uniform(0, GRID)) for _ in range(count)])
        physical = [
            _terminal(f"m-{category[:4]}-{i:05d}", category, country_at(x, y), "pos")
            for i, ((x, y), category) in enumerate(
                zip(points.tolist(), _draw(rng, PHYSICAL_CATEGORIES, count), strict=True)
            )
        ]
        online = tuple(
            _terminal(f"m-{category[:4]}-w{i:04d}", category, COUNTRIES[i % len(COUNTRIES)], "ecom")
            for i, category in enumerate(_draw(rng, ONLINE_CATEGORIES, ONLINE_MERCHANTS))
        )
        domestic: dict[str, list[Terminal]] = {}
        for terminal in online:
            domestic.setdefault(terminal.country, []).append(terminal)
        # x, y, mean amount, transactions per day
        profiles = np.array(
            [
                (
                    rng.uniform(0, GRID),
                    rng.uniform(0, GRID),
                    rng.uniform(5, 100),
                    rng.uniform(0.2, 4),
                )
                for _ in range(cards)
            ]
        ).reshape(cards, 4)
        customers = [
            Customer(
                card_id=f"card-{index:06d}",
                country=country_at(x, y),
                mean_amount=mean,
                std_amount=mean / 2.0,
                physical=tuple(physical[i] for i in near),
                online=_online_choice(rng, online, domestic[country_at(x, y)]),
            )
            for index, ((x, y, mean, _), near) in enumerate(
                zip(profiles.tolist(), _nearby(points, profiles[:, :2]), strict=True)
            )
        ]
        return cls(tuple(customers), tuple(profiles[:, 3].tolist()), online, count)


def _nearby(terminals: np.ndarray, homes: np.ndarray, least: int = 3) -> list[list[int]]:
    """Per home, the terminals within ``RADIUS`` (the ``least`` nearest if fewer: nobody lives
    out of reach of a shop).

    >>> _nearby(np.array([[0.0, 0.0], [3.0, 0.0], [50.0, 50.0]]), np.array([[1.0, 0.0]]), 2)
    [[0, 1]]
    """
    found = []
    for chunk in np.array_split(homes, max(1, len(homes) // 500)):
        squared = (chunk[:, :1] - terminals[:, 0]) ** 2 + (chunk[:, 1:2] - terminals[:, 1]) ** 2
        rows, columns = np.nonzero(squared < RADIUS**2)
        ends = np.searchsorted(rows, np.arange(1, len(chunk) + 1)).tolist()
        for row, (start, end) in enumerate(itertools.pairwise([0, *ends])):
            if end - start >= least:
                found.append(columns[start:end].tolist())
            else:
                found.append(np.argsort(squared[row], kind="stable")[:least].tolist())
    return found


def _terminal(merchant_id: str, category: str, country: str, channel: str) -> Terminal:
    channel = "atm" if category == "atm" else channel
    return Terminal(merchant_id, category, country, channel, AMOUNT_SCALE[category])


def _online_choice(
    rng: random.Random, online: tuple[Terminal, ...], domestic: list[Terminal]
) -> tuple[Terminal, ...]:
    """Half of a card's online merchants are domestic, the others anywhere."""
    half = ONLINE_PER_CARD // 2
    return (*rng.sample(domestic, k=half), *rng.sample(online, k=ONLINE_PER_CARD - half))


def _draw(rng: random.Random, weights: dict[str, int], count: int) -> list[str]:
    return rng.choices(list(weights), list(weights.values()), k=count)


def legit_amount(rng: random.Random, customer: Customer, scale: float) -> float:
    """A customer's usual amount at a terminal: normal around the customer's mean (a negative
    draw is redrawn uniformly below twice the mean, as in the handbook).

    >>> card = Customer("c", "FR", 40.0, 20.0, (), ())
    >>> 0 < legit_amount(random.Random(1), card, 1.0) < 200
    True
    """
    amount = rng.gauss(customer.mean_amount, customer.std_amount)
    if amount <= 0:
        amount = rng.uniform(0.0, 2.0 * customer.mean_amount)
    return max(amount * scale, 0.01)
