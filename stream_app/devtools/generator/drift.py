"""Drift schedules: where the synthetic stream changes, known in advance.

A :class:`Regime` is what the generator draws from between two drift points: the fraud mix
(pattern → its share of events, as a fraction of ``fraud_rate``), where risky-abroad fraud pays
(categories, countries, amount band) and which cards are active. A scenario is a list of steps,
each at a share of the run's events, each changing some regime fields; :func:`drift_schedule`
turns it into :class:`DriftPoint` s at event indices for a run of a given length. A scenario is
a built-in name (:data:`SCENARIOS`) or a TOML file of ``[[drift]]`` tables::

    [[drift]]
    at = 0.5                                   # share of the run's events (0..1)
    name = "risky-abroad fraud moves to travel"
    risky_categories = ["travel", "entertainment"]
    fraud_mix = { card_testing = 0.0 }         # merged into the current mix

Every change keeps ``P(fraud | pattern)``: a pattern is fraud wherever it goes. A covariate
shift (``spend_tilt``) changes which cards are active, not what any card does.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from stream_app.features import CATEGORIES

#: the fraud patterns the generator knows, and the default mix (shares of fraud events)
DEFAULT_MIX: tuple[tuple[str, float], ...] = (
    ("compromised_terminal", 0.10),
    ("compromised_card", 0.32),
    ("large_amount", 0.15),
    ("card_testing", 0.12),
    ("night_spike", 0.13),
    ("risky_abroad", 0.18),
)
PATTERNS = (*(name for name, _ in DEFAULT_MIX), "gift_cards")


@dataclass(frozen=True, slots=True)
class Regime:
    """What the stream draws from until the next drift point."""

    #: fraud pattern → share of events, as a fraction of ``fraud_rate`` (0 = absent)
    fraud_mix: tuple[tuple[str, float], ...] = DEFAULT_MIX
    #: where risky-abroad fraud pays: categories, countries, amount band (x the card's mean)
    risky_categories: tuple[str, ...] = ("electronics", "jewelry", "gaming", "digital_goods")
    risky_countries: tuple[str, ...] = ("NG", "RU")
    risky_amount: tuple[float, float] = (2.0, 12.0)
    #: share of legitimate payments made online
    ecom_share: float = 0.25
    #: card activity is weighted by (mean amount / the average mean) ** spend_tilt: > 0, big
    #: spenders pay more often (a covariate shift: no card behaves differently)
    spend_tilt: float = 0.0

    def __post_init__(self) -> None:
        unknown = {p for p, _ in self.fraud_mix} - set(PATTERNS)
        if unknown or any(share < 0 for _, share in self.fraud_mix):
            raise ValueError(f"fraud_mix: patterns are {PATTERNS}, shares >= 0 ({unknown})")
        if not set(self.risky_categories) <= set(CATEGORIES):
            raise ValueError(f"risky_categories: one of {CATEGORIES}")
        if not self.risky_categories or not self.risky_countries:
            raise ValueError("risky_categories and risky_countries must not be empty")
        low, high = self.risky_amount
        if not 0 < low <= high:
            raise ValueError("risky_amount: 0 < low <= high")
        if not 0.0 <= self.ecom_share <= 1.0:
            raise ValueError("ecom_share must be in [0, 1]")


@dataclass(frozen=True, slots=True)
class DriftPoint:
    """From event ``index`` on (0-based, counted from the first event), the stream draws from
    ``regime``."""

    index: int
    name: str
    regime: Regime


@dataclass(frozen=True, slots=True)
class AppliedDrift:
    """A drift point as it happened: the index and event time of its first event."""

    index: int
    event_time: int
    name: str


Step = Mapping[str, Any]
SCENARIOS: dict[str, tuple[Step, ...]] = {
    "none": (),
    "new-pattern": (
        {"at": 0.5, "name": "gift-card cash-out appears", "fraud_mix": {"gift_cards": 0.3}},
    ),
    "pattern-disappears": (
        {"at": 0.5, "name": "card testing stops", "fraud_mix": {"card_testing": 0.0}},
    ),
    "pattern-moves": (
        {
            "at": 0.5,
            "name": "risky-abroad fraud moves to other categories, countries and amounts",
            "risky_categories": ["travel", "entertainment"],
            "risky_countries": ["BR", "ID"],
            "risky_amount": [1.0, 4.0],
        },
    ),
    "covariate-shift": ({"at": 0.5, "name": "big spenders become more active", "spend_tilt": 1.5},),
}


def drift_schedule(scenario: str, events: int) -> tuple[DriftPoint, ...]:
    """The drift points of a built-in scenario (a name of :data:`SCENARIOS`) or a TOML scenario
    file, for a run of ``events`` events.

    >>> [(p.index, p.regime.spend_tilt) for p in drift_schedule("covariate-shift", 1000)]
    [(500, 1.5)]
    """
    if scenario in SCENARIOS:
        steps = SCENARIOS[scenario]
    elif Path(scenario).is_file():
        steps = tuple(tomllib.loads(Path(scenario).read_text()).get("drift", ()))
    else:
        raise ValueError(f"drift scenario {scenario!r}: one of {', '.join(SCENARIOS)}, or a file")
    points = []
    regime = Regime()
    for number, step in enumerate(sorted(steps, key=lambda s: float(s.get("at", -1))), 1):
        try:
            regime = _changed(regime, step)
            at = float(step["at"])
            name = str(step.get("name", f"drift {number}"))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"drift scenario {scenario!r}, step {number}: {error}") from error
        if not 0.0 <= at <= 1.0:
            raise ValueError(f"drift scenario {scenario!r}, step {number}: at must be in [0, 1]")
        points.append(DriftPoint(round(at * events), name, regime))
    return tuple(points)


def _changed(regime: Regime, step: Step) -> Regime:
    known = {f.name for f in fields(Regime)}
    changes = {k: v for k, v in step.items() if k not in ("at", "name")}
    if not set(changes) <= known:
        raise ValueError(f"unknown fields {sorted(set(changes) - known)}; known: {sorted(known)}")
    if "fraud_mix" in changes:
        changes["fraud_mix"] = tuple({**dict(regime.fraud_mix), **changes["fraud_mix"]}.items())
    for name in ("risky_categories", "risky_countries", "risky_amount"):
        if name in changes:
            changes[name] = tuple(changes[name])
    return replace(regime, **changes)
