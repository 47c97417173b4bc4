"""Velocity features over per-card state, for the cards of one input partition.

Every feature of an event is computed in event time from the card's history *before* the event
plus the event itself, then the event joins the history. Events are processed in the order given,
so an event sees the earlier events of its card in the same batch: training replays the events in
the order the workers consumed them and gets the same numbers (one code path).

Out-of-order events (event time earlier than the newest seen for the card) are scored against the
history at their own time ``t``: windows count retained events in ``(t - w, t]`` (later events are
not in the window), ``seconds_since_previous`` is measured from the latest retained event at or
before ``t`` (NaN if none), and the event is inserted at its place in time, so later events see it.
History is kept for 24 h before the *newest* event time seen, so a late event's windows that reach
further back than that are truncated, and an event a day or more older than the newest one is
scored but not kept. ``amount_to_mean`` uses the mean of every earlier-processed amount.

Cost: a few bisections on the card's sorted times, a sum and a set over the 1-hour window; the
24-hour sum of an in-order event is a running total of the retained amounts (added on arrival,
subtracted on eviction, exactly 0.0 whenever the history empties), so a busy card does not pay
for its whole day on every event. Its rounding differs from a fresh sum by ~1e-15 relative per
update; training and serving run this same code, so they agree exactly.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import islice, repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from stream_app.events import FloatArray
from stream_app.state.card import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    CardState,
    StateError,
    decode_card,
    decode_hour,
    encode_head,
    encode_hour,
)

VELOCITY_FEATURES: tuple[str, ...] = (
    "count_1m",
    "sum_1m",
    "count_1h",
    "sum_1h",
    "count_24h",
    "sum_24h",
    "distinct_merchants_1h",
    "seconds_since_previous",
    "amount_to_mean",
)
_WIDTH = len(VELOCITY_FEATURES)
#: changelog keys that start with it hold a partition's side state, not a card's (a card id
#: starting with a NUL byte would be read as one: card ids hold no control character)
SIDE_PREFIX = b"\x00"
#: an hour record's key: the card id, this byte, the hour (event time // HOUR_MS) in digits
HOUR_SEPARATOR = b"\x01"

#: amounts as a float array (a batch column) or any sequence of numbers
Amounts = FloatArray | Sequence[float]
#: event times in epoch milliseconds, as an integer array (a batch column) or a sequence
EventTimes = npt.NDArray[np.integer[Any]] | Sequence[int]
#: a changelog record: key, value (None: a tombstone, an hour whose events were all evicted)
StateRecord = tuple[bytes, bytes | None]


class PartitionState:
    """Card id → :class:`CardState` for the cards of one input partition, with the cards changed
    since the last :meth:`cut` (dirty, in first-touched order), each with the hours of event time
    whose events changed (an hour record each: card records are cut by hour, see ``card``).

    A checkpoint *cuts* the dirty cards (:meth:`cut`) between two batches and takes their
    changelog records (:meth:`take_cut`) as they were at the cut, all at once or a few at a time
    while later batches go on: a card of the cut that a later batch changes is encoded just
    before the change.
    """

    __slots__ = ("_cards", "_cut", "_cut_records", "_dirty", "_restored_side", "_side")

    def __init__(self) -> None:
        self._cards: dict[str, CardState] = {}
        self._dirty: dict[str, set[int]] = {}  # card → hours changed
        self._cut: dict[str, set[int]] = {}  # cards of the cut not encoded yet
        self._cut_records: list[StateRecord] = []  # encoded before a change, not taken
        self._side: dict[bytes, Callable[[], bytes]] = {}  # reserved key → its encoder
        self._restored_side: dict[bytes, bytes] = {}  # reserved key → its restored record

    def __len__(self) -> int:
        return len(self._cards)

    def __contains__(self, card_id: object) -> bool:
        return card_id in self._cards

    def get(self, card_id: str) -> CardState | None:
        """The card's state, if the partition has any. Only a card scored in the current batch
        may be changed (alert bookkeeping): it is dirty, and a pending cut already has its copy."""
        return self._cards.get(card_id)

    def dirty_cards(self) -> list[str]:
        """Cards changed since the last cut, in the order first touched."""
        return list(self._dirty)

    def cut(self) -> None:
        """Start a checkpoint: the cards changed until now make up the cut, to be taken as they
        are now by :meth:`take_cut`; later changes belong to the next cut. The previous cut must
        have been taken entirely.

        >>> part = PartitionState()
        >>> _ = part.velocity_features(["a", "b"], ["m", "m"], [1.0, 1.0], [0, 0])
        >>> part.cut(); part.dirty_cards(), part.cut_pending()
        ([], True)
        >>> part.cut()
        Traceback (most recent call last):
        stream_app.state.card.StateError: the previous cut has not been taken entirely
        """
        if self.cut_pending():
            raise StateError("the previous cut has not been taken entirely")
        if self._dirty:  # the partition scored events since the last cut
            self._cut_records.extend((key, encode()) for key, encode in self._side.items())
        self._cut, self._dirty = self._dirty, {}

    def keep_side_state(self, key: bytes, encode: Callable[[], bytes]) -> None:
        """Write ``encode()`` under the reserved ``key`` (it starts with :data:`SIDE_PREFIX`)
        with every cut that follows scored events: state of the partition that is not a card's
        (the drift monitors'), checkpointed with the cards.

        >>> part = PartitionState()
        >>> part.keep_side_state(b"\\x00m", lambda: b"{}")
        >>> _ = part.velocity_features(["a"], ["m"], [1.0], [0])
        >>> part.cut(); [key for key, _ in part.take_cut()]
        [b'\\x00m', b'a', b'a\\x010']
        >>> restored = PartitionState(); restored.restore([(b"\\x00m", b"{}")])
        []
        >>> restored.side_state(b"\\x00m"), len(restored)
        (b'{}', 0)
        """
        if not key.startswith(SIDE_PREFIX):
            raise StateError(f"a side state's key starts with {SIDE_PREFIX!r}: {key!r}")
        self._side[key] = encode

    def side_state(self, key: bytes) -> bytes | None:
        """The record restored under the reserved ``key``, if the changelog had one."""
        return self._restored_side.get(key)

    def cut_pending(self) -> bool:
        """Whether records of the cut remain to be taken."""
        return bool(self._cut or self._cut_records)

    def cut_cards_left(self) -> int:
        """Cards of the cut not encoded yet."""
        return len(self._cut)

    def take_cut(self, limit: int | None = None) -> list[StateRecord]:
        """The changelog records of cards of the cut, each card as it was at the cut: those
        encoded before a change since, then up to ``limit`` more cards (all with ``None``). A
        card's records are its head (key: the card id in UTF-8) and its changed hours (key: the
        card id, :data:`HOUR_SEPARATOR`, the hour), a tombstone for an hour left empty.

        >>> part = PartitionState()
        >>> _ = part.velocity_features(["a", "b"], ["m", "m"], [1.0, 1.0], [0, 0])
        >>> part.cut(); [key for key, _ in part.take_cut(1)]
        [b'a', b'a\\x010']
        >>> _ = part.velocity_features(["b"], ["m"], [5.0], [10])  # b as at the cut, encoded now
        >>> [(key, decode_hour(value, 0)[1]) for key, value in part.take_cut()[1:]]
        [(b'b\\x010', [1.0])]
        >>> part.cut_pending(), part.dirty_cards()
        (False, ['b'])
        """
        records, self._cut_records = self._cut_records, []
        cut = self._cut
        count = len(cut) if limit is None else min(limit, len(cut))
        for card in list(islice(cut, count)):
            self._encode_card(card, cut.pop(card), records)
        return records

    def _encode_cut_card(self, card: str) -> None:
        """Encode a card of the cut now, before a change (its records wait for take_cut)."""
        self._encode_card(card, self._cut.pop(card), self._cut_records)

    def _encode_card(self, card: str, hours: set[int], records: list[StateRecord]) -> None:
        """Append the card's head record and the records of its ``hours`` to ``records``."""
        state = self._cards[card]
        key = card.encode()
        records.append((key, encode_head(state)))
        for hour in sorted(hours):
            lo, hi = state.hour_bounds(hour)
            value = encode_hour(*state.events(lo, hi)) if hi > lo else None
            records.append((key + HOUR_SEPARATOR + str(hour).encode(), value))

    def restore(self, records: Iterable[StateRecord]) -> list[str]:
        """Apply changelog records in order: a later record of a key wins, a ``None`` value (a
        tombstone) deletes a card (its head's key) or an hour of its events. Restored cards are
        not dirty: the changelog has them, except a whole card as earlier versions wrote it,
        whose hours are all dirty so that the next checkpoint writes them as hour records.
        Refused while a cut is being taken (its cards must stay as they were at the cut).

        A record that cannot be read (a key that is not UTF-8, a value that is not a card's
        state: written by something else than a worker) is passed over, its card or hour
        starting afresh, and said in the returned list: one such record must not keep its
        partition from ever being scored.

        >>> part = PartitionState()
        >>> _ = part.velocity_features(["a", "a"], ["m", "n"], [1.0, 2.0], [0, HOUR_MS])
        >>> part.cut(); restored = PartitionState(); restored.restore(part.take_cut())
        []
        >>> restored.get("a") == part.get("a"), restored.dirty_cards()
        (True, [])
        """
        if self.cut_pending():
            raise StateError("cannot restore while a checkpoint's cut is being taken")
        unreadable: list[str] = []
        restored: set[str] = set()
        for key, value in records:
            if key.startswith(SIDE_PREFIX):
                if value is None:
                    self._restored_side.pop(key, None)
                else:
                    self._restored_side[key] = value
                continue
            card_key, hour_record, hour = key.partition(HOUR_SEPARATOR)
            try:
                card = card_key.decode()
            except UnicodeDecodeError:
                unreadable.append(f"a key that is not UTF-8: {key[:64]!r}")
                continue
            try:
                if hour_record:
                    self._restore_hour(card, hour, value)
                else:
                    self._restore_head(card, value)
            except StateError as exc:
                unreadable.append(f"card {card[:64]!r}: {exc}")
            else:
                restored.add(card)
        for card in restored:  # a head and hours written by checkpoints a crash tore apart
            state = self._cards.get(card)
            if state is not None and state.times and not state.times[-1] <= (state.newest_ms or 0):
                state.newest_ms = state.times[-1]
        return unreadable

    def _restore_head(self, card: str, value: bytes | None) -> None:
        cards = self._cards
        self._dirty.pop(card, None)
        if value is None:
            cards.pop(card, None)
            return
        try:
            head = decode_card(value)
        except StateError:
            cards.pop(card, None)  # its latest head unreadable: the card starts afresh
            raise
        if head.times:  # a whole card, as earlier versions wrote it: written again by hour
            self._dirty[card] = {t // HOUR_MS for t in head.times}
        elif card in cards:  # its hour records came first
            old = cards[card]
            head.times, head.amounts, head.merchants = old.times, old.amounts, old.merchants
            head.merchant_codes = old.merchant_codes
        cards[card] = head

    def _restore_hour(self, card: str, hour_digits: bytes, value: bytes | None) -> None:
        if not hour_digits.isdigit():
            raise StateError(f"an hour record's hour is not a number: {hour_digits[:32]!r}")
        hour = int(hour_digits)
        state = self._cards.get(card)
        if state is None:
            if value is None:
                return
            state = self._cards[card] = CardState.of()
        state.replace_hour(hour, ([], [], []) if value is None else decode_hour(value, hour))

    def velocity_features(
        self,
        cards: Sequence[str],
        merchants: Sequence[str],
        amounts: Amounts,
        times: EventTimes,
    ) -> FloatArray:
        """Velocity features (events x ``VELOCITY_FEATURES``, float64) of events processed in the
        given order, updating the cards' state and marking them dirty.

        >>> part = PartitionState()
        >>> rows = part.velocity_features(
        ...     ["c1", "c1", "c2", "c1"], ["m1", "m2", "m1", "m1"],
        ...     np.array([10.0, 30.0, 5.0, 40.0]), np.array([0, 30_000, 45_000, 90_000]))

        The last event: its 1-minute window is (30 s, 90 s], so the event at exactly 30 s is out.

        >>> dict(zip(VELOCITY_FEATURES, rows[3].tolist()))  # doctest: +NORMALIZE_WHITESPACE
        {'count_1m': 1.0, 'sum_1m': 40.0, 'count_1h': 3.0, 'sum_1h': 80.0, 'count_24h': 3.0,
         'sum_24h': 80.0, 'distinct_merchants_1h': 2.0, 'seconds_since_previous': 60.0,
         'amount_to_mean': 2.0}
        >>> part.dirty_cards()
        ['c1', 'c2']
        """
        return velocity_features(repeat(self, len(cards)), cards, merchants, amounts, times)


def velocity_features(
    partitions: Iterable[PartitionState],
    cards: Sequence[str],
    merchants: Sequence[str],
    amounts: Amounts,
    times: EventTimes,
) -> FloatArray:
    """:meth:`PartitionState.velocity_features` of events of several partitions, each event with
    its partition's state in ``partitions`` (one per event): a partition's events are processed in
    the order given, in one loop over the batch, whichever partitions they interleave with."""
    n = len(cards)
    if not len(merchants) == len(amounts) == len(times) == n:
        lengths = (n, len(merchants), len(amounts), len(times))
        raise StateError(f"cards, merchants, amounts and times differ in length {lengths}")
    amount_list: list[float] = np.asarray(amounts, dtype=np.float64).tolist()
    time_list: list[int] = np.asarray(times, dtype=np.int64).tolist()
    out: list[float] = []
    put = out.extend
    nan = math.nan
    minute, hour, day = MINUTE_MS, HOUR_MS, DAY_MS
    for part, card, merchant, amount, t in zip(
        partitions, cards, merchants, amount_list, time_list, strict=True
    ):
        hours = part._dirty.get(card)
        if hours is None:
            if part._cut and card in part._cut:  # taken as it was at the cut, before it changes
                part._encode_cut_card(card)
            hours = part._dirty[card] = set()
        states = part._cards
        state = states.get(card)
        if state is None:
            state = states[card] = CardState(array("q"), array("d"), array("q"), {})
        ts = state.times
        ams = state.amounts
        mers = state.merchants
        newest = state.newest_ms
        if newest is None or t >= newest:  # in order: the common case
            gap = nan if newest is None else (t - newest) / 1000.0
            state.newest_ms = t
            horizon = t - day  # evict what no window of this or a later event can reach
            total = state.retained_sum
            if ts and ts[0] <= horizon:
                k = bisect_right(ts, horizon)
                total = total - sum(ams[:k]) if k < len(ts) else 0.0
                hours.update(range(ts[0] // hour, ts[k - 1] // hour + 1))
                del ts[:k], ams[:k], mers[:k]
                if len(state.merchant_codes) > 2 * len(mers) + 16:  # codes of evicted merchants
                    state.compact_merchants()
                    mers = state.merchants
            state.retained_sum = total + amount
            hi = len(ts)
            keep = True
        else:  # late: score at its own time, insert at its place
            hi = bisect_right(ts, t)
            gap = (t - ts[hi - 1]) / 1000.0 if hi else nan
            keep = t > newest - day
            total = sum(ams[:hi])
            if keep:
                state.retained_sum += amount
        codes = state.merchant_codes
        code = codes.get(merchant)
        if code is None:
            code = codes[merchant] = len(codes)
        # everything kept is less than a day older than newest >= t: all in the 24 h window
        lo_h = bisect_right(ts, t - hour, 0, hi)
        lo_m = bisect_right(ts, t - minute, lo_h, hi)
        sum_m = sum(ams[lo_m:hi])
        sum_h = sum(ams[lo_h:lo_m], sum_m)
        sum_d = total if lo_h else sum_h
        mean = state.amount_mean
        put(
            (
                hi - lo_m + 1,
                sum_m + amount,
                hi - lo_h + 1,
                sum_h + amount,
                hi + 1,
                sum_d + amount,
                len({code, *mers[lo_h:hi]}),
                gap,
                amount / mean if mean else nan,  # mean is 0.0 before the first amount
            )
        )
        count = state.amount_count + 1
        state.amount_count = count
        state.amount_mean = mean + (amount - mean) / count
        if not keep:
            continue
        hours.add(t // hour)
        if hi == len(ts):
            ts.append(t)
            ams.append(amount)
            mers.append(code)
        else:
            ts.insert(hi, t)
            ams.insert(hi, amount)
            mers.insert(hi, code)
    return np.fromiter(out, dtype=np.float64, count=n * _WIDTH).reshape(n, _WIDTH)
