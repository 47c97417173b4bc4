"""What the scoring workers remember about one card, and its changelog encoding.

A :class:`CardState` holds the card's events of the last 24 hours of event time (sorted by event
time, as three parallel lists), the running count and mean of every amount it has seen, the newest
event time seen and the alert cool-down bookkeeping.

In the changelog a card is a *head* record (its state with the event lists left empty:
:func:`encode_head`) and one *hour* record per hour of event time that holds events
(:func:`encode_hour`), so that a checkpoint writes what changed, the hour a new event falls in, and
not the card's whole day again: a busy card's record no longer grows with its history. Records are
msgpack *arrays* (no field names) so that they stay small; fields are only ever added at the end,
with a default, so old records still decode and old readers ignore new trailing fields. A head
with its lists filled is a whole card, as earlier versions wrote it, and is read as such.
"""

from __future__ import annotations

import itertools

import msgspec
import msgspec.structs

from stream_app.errors import StreamAppError

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
#: the longest window, and how much history a card keeps before the newest event time seen
DAY_MS = 24 * HOUR_MS


class StateError(StreamAppError):
    """Per-card state was given inconsistent input or a changelog record it cannot decode."""


class CardState(msgspec.Struct, array_like=True, gc=False):
    """One card's recent history and running aggregates.

    ``times``/``amounts``/``merchants`` are the retained events, sorted by event time (ties in
    arrival order), all less than ``DAY_MS`` older than ``newest_ms``; eviction happens when a
    newer event arrives, so a card that goes quiet keeps its last day until it is seen again.
    ``amount_count`` and ``amount_mean`` cover every amount ever seen, evicted or not.
    ``gc=False``: the struct holds only lists of ints, floats and strings, so it can never be
    part of a reference cycle.
    """

    times: list[int]
    amounts: list[float]
    merchants: list[str]
    #: running total of ``amounts`` (the 24-hour sum of an in-order event, without re-summing)
    retained_sum: float = 0.0
    amount_count: int = 0
    amount_mean: float = 0.0
    #: newest event time seen (ms): the previous event of an in-order event, the eviction anchor
    newest_ms: int | None = None
    #: event time of the last alert raised for the card (cool-down anchor)
    last_alert_ms: int | None = None
    #: alerts suppressed since ``last_alert_ms`` (incremented by the alert rules)
    suppressed: int = 0

    def in_cooldown(self, event_time_ms: int, cooldown_ms: int) -> bool:
        """Whether an alert at ``event_time_ms`` falls within ``cooldown_ms`` after the last one.

        Events at or before the last alert (late arrivals) count as inside the cool-down.

        >>> state = CardState([], [], [])
        >>> state.in_cooldown(10_000, 5_000)
        False
        >>> state.record_alert(10_000)
        >>> [state.in_cooldown(t, 5_000) for t in (9_000, 14_999, 15_000)]
        [True, True, False]
        """
        last = self.last_alert_ms
        return last is not None and event_time_ms - last < cooldown_ms

    def record_alert(self, event_time_ms: int) -> None:
        """Note an alert raised at ``event_time_ms``: the cool-down restarts (never moves back in
        event time) and the suppressed count starts again from zero.

        >>> state = CardState([], [], [], suppressed=3)
        >>> state.record_alert(20_000); state.record_alert(15_000)
        >>> state.last_alert_ms, state.suppressed
        (20000, 0)
        """
        last = self.last_alert_ms
        self.last_alert_ms = event_time_ms if last is None else max(last, event_time_ms)
        self.suppressed = 0


#: an hour record's events: times, amounts, merchants (parallel lists, sorted by time)
HourEvents = tuple[list[int], list[float], list[str]]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CardState)
_hour_decoder = msgspec.msgpack.Decoder(tuple[list[int], list[float], list[str]])


def encode_card(state: CardState) -> bytes:
    """A whole card, events included, as a msgpack array.

    >>> len(encode_card(CardState([1_000], [12.5], ["m1"], 12.5, 1, 12.5, 1_000)))
    43
    """
    return _encoder.encode(state)


def encode_head(state: CardState) -> bytes:
    """The card's head record: its state without its events (those are in its hour records).

    >>> head = decode_card(encode_head(CardState([1_000], [12.5], ["m1"], 12.5, 1, 12.5, 1_000)))
    >>> head.times, head.amount_count, head.newest_ms
    ([], 1, 1000)
    """
    return _encoder.encode(msgspec.structs.replace(state, times=[], amounts=[], merchants=[]))


def encode_hour(times: list[int], amounts: list[float], merchants: list[str]) -> bytes:
    """An hour record: the card's events of one hour of event time."""
    return _encoder.encode((times, amounts, merchants))


def decode_hour(value: bytes, hour: int) -> HourEvents:
    """The events of an hour record of ``hour`` (event time // ``HOUR_MS``), checked: parallel
    lists, sorted times, all in that hour.

    >>> decode_hour(encode_hour([3_600_000, 3_600_500], [1.0, 2.0], ["m", "n"]), 1)
    ([3600000, 3600500], [1.0, 2.0], ['m', 'n'])
    >>> decode_hour(encode_hour([5], [1.0], ["m"]), 1)
    Traceback (most recent call last):
    ...
    stream_app.state.card.StateError: an event of hour 1 is outside it
    """
    try:
        times, amounts, merchants = _hour_decoder.decode(value)
    except msgspec.DecodeError as exc:
        raise StateError(f"undecodable hour record: {exc}") from exc
    _check_events(times, amounts, merchants)
    if times and not hour * HOUR_MS <= times[0] <= times[-1] < (hour + 1) * HOUR_MS:
        raise StateError(f"an event of hour {hour} is outside it")
    return times, amounts, merchants


def _check_events(times: list[int], amounts: list[float], merchants: list[str]) -> None:
    if not len(times) == len(amounts) == len(merchants):
        lengths = (len(times), len(amounts), len(merchants))
        raise StateError(f"times, amounts and merchants differ in length {lengths}")
    if any(a > b for a, b in itertools.pairwise(times)):
        raise StateError("times are not sorted")


def decode_card(value: bytes) -> CardState:
    """A card's state back from its head record (or a whole card's), checked for the invariants
    the feature computation relies on (parallel lists, sorted times).

    >>> decode_card(encode_card(CardState([1_000], [12.5], ["m1"], 12.5, 1, 12.5, 1_000))).times
    [1000]
    >>> decode_card(b"\\x93\\x90\\x91\\x01\\x90")
    Traceback (most recent call last):
    ...
    stream_app.state.card.StateError: times, amounts and merchants differ in length (0, 1, 0)
    """
    try:
        state = _decoder.decode(value)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise StateError(f"undecodable card state: {exc}") from exc
    times = state.times
    _check_events(times, state.amounts, state.merchants)
    if times and (state.newest_ms is None or times[-1] > state.newest_ms):
        raise StateError("an event is newer than newest_ms")
    return state
