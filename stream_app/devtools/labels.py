"""Delayed ground truth from the generator's: chargebacks for fraud, "cleared" for the rest.

A card issuer learns the truth of a transaction late: a fraud is charged back days to weeks
after it happened, a legitimate transaction is cleared once nobody disputed it, and some never
get either. :class:`ChargebackLabeller` turns each generated event into such a label, due at a
random delay in event time, and hands it out once the generator's event-time clock has passed
its due time; :meth:`ChargebackLabeller.tail` gives the labels still pending when the run ends
(their label time lies beyond its last event). Labels go to the ``labels`` topic keyed by card
id, like the transactions (``stream-app produce --labels``).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Literal

from stream_app.devtools.generator import LabelledTransaction

DAY_MS = 86_400_000

LabelSource = Literal["alert_feedback", "chargeback"]


@dataclass(frozen=True, slots=True)
class Label:
    """One record of the ``labels`` topic (``schemas/label.avsc``)."""

    event_id: str
    card_id: str
    is_fraud: bool
    label_source: LabelSource
    label_time: int
    event_time: int

    def record(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Delay:
    """A delay in event time, uniform between two bounds, and the share that never arrives."""

    min_days: float
    max_days: float
    never: float

    def __post_init__(self) -> None:
        if not 0 <= self.min_days <= self.max_days:
            raise ValueError("a delay needs 0 <= min_days <= max_days")
        if not 0.0 <= self.never <= 1.0:
            raise ValueError("the share of labels that never arrive is in [0, 1]")


@dataclass(frozen=True)
class ChargebackDelays:
    """How late the chargeback channel tells the truth, by what the truth is."""

    fraud: Delay = Delay(min_days=3, max_days=45, never=0.1)
    """a chargeback: days to weeks after the fraud; some frauds are never disputed"""
    legit: Delay = Delay(min_days=30, max_days=60, never=0.05)
    """cleared once the dispute window passed without a chargeback"""


class ChargebackLabeller:
    """Chargeback labels of generated events, released in event-time order once due.

    >>> from stream_app.events import Transaction
    >>> def item(event_id, time_ms, fraud):
    ...     event = Transaction(event_id, "card-1", "m", "grocery", 1.0, "EUR", "pos", "FR", "FR",
    ...                         time_ms)
    ...     return LabelledTransaction(event, fraud, "x")
    >>> once = ChargebackDelays(Delay(1, 1, never=0.0), Delay(2, 2, never=0.0))
    >>> labeller = ChargebackLabeller(once, seed=1)
    >>> [list(labeller.observe(item(e, DAY_MS, e == "a"))) for e in "ab"]
    [[], []]
    >>> [(x.event_id, x.is_fraud) for x in labeller.observe(item("c", 2 * DAY_MS, False))]
    [('a', True)]
    >>> [(x.event_id, x.label_time // DAY_MS) for x in labeller.tail()]
    [('b', 3), ('c', 4)]
    """

    def __init__(self, delays: ChargebackDelays = ChargebackDelays(), seed: int = 42) -> None:
        self._delays = delays
        self._rng = random.Random(seed)  # noqa: S311  # synthetic data
        self._due: list[tuple[int, int, Label]] = []  # (due time, arrival order, label)
        self._seen = 0

    @property
    def pending(self) -> int:
        return len(self._due)

    def observe(self, item: LabelledTransaction) -> Iterator[Label]:
        """Schedule ``item``'s label (unless it never comes); yield those due by its event time."""
        delay = self._delays.fraud if item.is_fraud else self._delays.legit
        if self._rng.random() >= delay.never:
            days = self._rng.uniform(delay.min_days, delay.max_days)
            event = item.event
            due = event.event_time + round(days * DAY_MS)
            label = Label(
                event.event_id, event.card_id, item.is_fraud, "chargeback", due, event.event_time
            )
            heapq.heappush(self._due, (due, self._seen, label))
            self._seen += 1
        now = item.event.event_time
        while self._due and self._due[0][0] <= now:
            yield heapq.heappop(self._due)[2]

    def tail(self) -> Iterator[Label]:
        """The labels still pending, in due order (the run ended before they were due)."""
        while self._due:
            yield heapq.heappop(self._due)[2]
