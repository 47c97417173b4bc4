"""Cool-down: after an alert on a card, further alerts on that card within ``cooldown_ms`` of event
time are suppressed and counted, so one fraud episode raises one alert, not one per event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from stream_app.alerts.ruleset import Fired


class CooldownState(Protocol):
    """What the cool-down needs of a card's state (``stream_app.state.card.CardState`` has it)."""

    suppressed: int

    def in_cooldown(self, event_time_ms: int, cooldown_ms: int, /) -> bool:
        """Whether an alert at this event time falls within the cool-down of the last one."""
        ...

    def record_alert(self, event_time_ms: int, /) -> None:
        """Note an alert raised at this event time."""
        ...


def apply_cooldown(
    fired: Sequence[Fired],
    cards: Sequence[str],
    event_times: Sequence[int] | np.ndarray,
    lookup_state: Callable[[str], CooldownState],
    cooldown_ms: int,
) -> tuple[list[Fired], int]:
    """The alerts to raise and how many were suppressed, walking ``fired`` in order.

    ``cards`` and ``event_times`` are the batch's card ids and event times (ms), indexed by the
    row numbers in ``fired``. A row whose card is in cool-down is dropped and the card's
    ``suppressed`` counter incremented; any other row is kept and restarts the card's cool-down,
    so two rows of one card in the same batch are judged in order.

    >>> class State:
    ...     def __init__(self): self.last, self.suppressed = None, 0
    ...     def in_cooldown(self, t, cool): return self.last is not None and t - self.last < cool
    ...     def record_alert(self, t): self.last, self.suppressed = t, 0
    >>> states = {"c1": State(), "c2": State()}
    >>> fired = [(0, ["high_score"]), (1, ["card_testing"]), (2, ["high_score"])]
    >>> apply_cooldown(fired, ["c1", "c1", "c2"], [1_000, 2_000, 2_000], states.__getitem__, 60_000)
    ([(0, ['high_score']), (2, ['high_score'])], 1)
    >>> states["c1"].suppressed
    1
    """
    if cooldown_ms < 0:
        raise ValueError(f"cooldown_ms must be >= 0, got {cooldown_ms}")
    kept: list[Fired] = []
    suppressed = 0
    for row, names in fired:
        state = lookup_state(cards[row])
        event_time = int(event_times[row])
        if state.in_cooldown(event_time, cooldown_ms):
            state.suppressed += 1
            suppressed += 1
        else:
            state.record_alert(event_time)
            kept.append((row, names))
    return kept, suppressed
