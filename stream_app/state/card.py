"""What the scoring workers remember about one card, and its changelog encoding.

A :class:`CardState` holds the card's events of the last 24 hours of event time (sorted by event
time, as three parallel arrays), the running count and mean of every amount it has seen, the
newest event time seen and the alert cool-down bookkeeping.

The events are kept in ``array.array`` columns, merchants as small integer codes, rather than in
lists: the cyclic garbage collector visits every element of a list on each full collection (the
collector holds the GIL, so the worker's loop stalls meanwhile), and a list's element is a Python
object of its own. An array is one object, its elements are not visited, and each takes 8 bytes.

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
import operator
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from stream_app.errors import StreamAppError

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
#: the longest window, and how much history a card keeps before the newest event time seen
DAY_MS = 24 * HOUR_MS

#: an hour record's events: times, amounts, merchants (parallel lists, sorted by time)
HourEvents = tuple[list[int], list[float], list[str]]


class StateError(StreamAppError):
    """Per-card state was given inconsistent input or a changelog record it cannot decode."""


class CardAggregates(msgspec.Struct, kw_only=True):
    """A card's running aggregates: declared once for the state and its changelog record, where
    they follow the events in this order (keyword-only fields come after a subclass's own)."""

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


#: the aggregates' names, in record order: a head record holds them after empty event lists
AGGREGATES = CardAggregates.__struct_fields__


class CardState(CardAggregates, gc=False, eq=False):
    """One card's recent history and running aggregates.

    ``times``/``amounts``/``merchants`` are the retained events, sorted by event time (ties in
    arrival order), all less than ``DAY_MS`` older than ``newest_ms``; eviction happens when a
    newer event arrives, so a card that goes quiet keeps its last day until it is seen again.
    ``merchants`` holds each event's merchant as its code in ``merchant_codes``.
    ``amount_count`` and ``amount_mean`` cover every amount ever seen, evicted or not.
    ``gc=False``: the struct holds only arrays and a dict of strings to ints, so it can never be
    part of a reference cycle. Two states are equal when their events and aggregates are, whatever
    codes their merchants have.
    """

    times: array[int]  # typecode "q"
    amounts: array[float]  # typecode "d"
    merchants: array[int]  # typecode "q": codes in merchant_codes
    #: merchant id → code, codes 0, 1, ... in insertion order (strings and ints only: a dict
    #: the garbage collector never tracks)
    merchant_codes: dict[str, int]

    @classmethod
    def of(
        cls,
        times: Sequence[int] = (),
        amounts: Sequence[float] = (),
        merchants: Sequence[str] = (),
        **aggregates: Any,
    ) -> CardState:
        """A state from its events as sequences (merchants by id) and its aggregates.

        >>> CardState.of([1_000, 2_000], [1.0, 2.0], ["m", "n"], newest_ms=2_000).events()
        ([1000, 2000], [1.0, 2.0], ['m', 'n'])
        """
        state = cls(array("q", times), array("d", amounts), array("q"), {}, **aggregates)
        state.merchants.extend(map(state.code_of, merchants))
        return state

    def code_of(self, merchant: str) -> int:
        """The code of ``merchant`` in this card, given it if it has none yet."""
        codes = self.merchant_codes
        code = codes.get(merchant)
        if code is None:
            code = codes[merchant] = len(codes)
        return code

    def events(self, lo: int = 0, hi: int | None = None) -> HourEvents:
        """The retained events ``lo:hi`` as lists, merchants by id."""
        names = list(self.merchant_codes)  # by code: codes are given in insertion order
        return (
            self.times[lo:hi].tolist(),
            self.amounts[lo:hi].tolist(),
            list(map(names.__getitem__, self.merchants[lo:hi])),
        )

    def hour_bounds(self, hour: int) -> tuple[int, int]:
        """The index range of the events of ``hour`` (event time // ``HOUR_MS``)."""
        times = self.times
        lo = bisect_left(times, hour * HOUR_MS)
        return lo, bisect_left(times, (hour + 1) * HOUR_MS, lo)

    def replace_hour(self, hour: int, events: HourEvents) -> None:
        """Put ``events`` (all of ``hour``, sorted) in place of the events of that hour.

        >>> state = CardState.of([5, HOUR_MS + 1], [1.0, 2.0], ["m", "n"])
        >>> state.replace_hour(0, ([7, 9], [3.0, 4.0], ["o", "m"])); state.events()
        ([7, 9, 3600001], [3.0, 4.0, 2.0], ['o', 'm', 'n'])
        """
        times, amounts, merchants = events
        lo, hi = self.hour_bounds(hour)
        self.times[lo:hi] = array("q", times)
        self.amounts[lo:hi] = array("d", amounts)
        self.merchants[lo:hi] = array("q", map(self.code_of, merchants))

    def compact_merchants(self) -> None:
        """Forget the codes of merchants no retained event has (evicted ones), renumbering.

        >>> state = CardState.of([1, 2], [1.0, 1.0], ["m", "n"])
        >>> del state.times[:1], state.amounts[:1], state.merchants[:1]
        >>> state.compact_merchants(); state.merchant_codes, state.events()[2]
        ({'n': 0}, ['n'])
        """
        names = list(self.merchant_codes)
        self.merchant_codes = {}
        self.merchants = array("q", (self.code_of(names[code]) for code in self.merchants))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CardState):
            return NotImplemented
        return self.events() == other.events() and _aggregates(self) == _aggregates(other)

    def in_cooldown(self, event_time_ms: int, cooldown_ms: int) -> bool:
        """Whether an alert at ``event_time_ms`` falls within ``cooldown_ms`` after the last one.

        Events at or before the last alert (late arrivals) count as inside the cool-down.

        >>> state = CardState.of()
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

        >>> state = CardState.of(suppressed=3)
        >>> state.record_alert(20_000); state.record_alert(15_000)
        >>> state.last_alert_ms, state.suppressed
        (20000, 0)
        """
        last = self.last_alert_ms
        self.last_alert_ms = event_time_ms if last is None else max(last, event_time_ms)
        self.suppressed = 0


#: a card's aggregates as a tuple, in record order (one C call: a checkpoint calls it per card)
_aggregates: Callable[[CardAggregates], tuple[Any, ...]] = operator.attrgetter(*AGGREGATES)


class _RecordedCard(CardAggregates, array_like=True):
    """A card as the changelog holds it: a head (lists empty) or a whole card (earlier versions),
    the events' lists then the aggregates.

    >>> _RecordedCard.__struct_fields__[:4]
    ('times', 'amounts', 'merchants', 'retained_sum')
    """

    times: list[int]
    amounts: list[float]
    merchants: list[str]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_RecordedCard)
_hour_decoder = msgspec.msgpack.Decoder(tuple[list[int], list[float], list[str]])


def encode_head(state: CardState) -> bytes:
    """The card's head record: its aggregates, its events left out (those are in its hours).

    >>> head = decode_card(encode_head(CardState.of([1_000], [12.5], ["m1"], amount_count=1)))
    >>> head.events(), head.amount_count
    (([], [], []), 1)
    """
    return _encoder.encode(((), (), (), *_aggregates(state)))


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
    """A card's state back from its head record (or a whole card's, as earlier versions wrote
    it), checked for the invariants the feature computation relies on (parallel lists, sorted
    times, none newer than ``newest_ms``).

    >>> whole = msgspec.msgpack.encode(([1_000], [2.5], ["m"], 2.5, 1, 2.5, 1_000))
    >>> decode_card(whole).events()
    ([1000], [2.5], ['m'])
    >>> decode_card(b"\\x93\\x90\\x91\\x01\\x90")
    Traceback (most recent call last):
    ...
    stream_app.state.card.StateError: times, amounts and merchants differ in length (0, 1, 0)
    """
    try:
        recorded = _decoder.decode(value)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise StateError(f"undecodable card state: {exc}") from exc
    times = recorded.times
    _check_events(times, recorded.amounts, recorded.merchants)
    if times and (recorded.newest_ms is None or times[-1] > recorded.newest_ms):
        raise StateError("an event is newer than newest_ms")
    aggregates = dict(zip(AGGREGATES, _aggregates(recorded), strict=True))
    return CardState.of(times, recorded.amounts, recorded.merchants, **aggregates)
