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
    encode_card,
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
#: starting with a NUL byte would be read as one: card ids are printable)
SIDE_PREFIX = b"\x00"

#: amounts as a float array (a batch column) or any sequence of numbers
Amounts = FloatArray | Sequence[float]
#: event times in epoch milliseconds, as an integer array (a batch column) or a sequence
EventTimes = npt.NDArray[np.integer[Any]] | Sequence[int]


class PartitionState:
    """Card id → :class:`CardState` for the cards of one input partition, with the set of cards
    changed since the last :meth:`cut` (dirty, in first-touched order).

    A checkpoint *cuts* the dirty cards (:meth:`cut`) between two batches and takes their
    changelog records (:meth:`take_cut`) as they were at the cut, all at once or a few at a time
    while later batches go on: a card of the cut that a later batch changes is encoded just
    before the change.
    """

    __slots__ = ("_cards", "_cut", "_cut_records", "_dirty", "_restored_side", "_side")

    def __init__(self) -> None:
        self._cards: dict[str, CardState] = {}
        self._dirty: dict[str, None] = {}
        self._cut: dict[str, None] = {}  # cards of the cut not encoded yet
        self._cut_records: list[tuple[bytes, bytes]] = []  # encoded before a change, not taken
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
        [b'\\x00m', b'a']
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

    def take_cut(self, limit: int | None = None) -> list[tuple[bytes, bytes]]:
        """``(card id UTF-8, msgpack state)`` of cards of the cut, each as it was at the cut:
        those encoded before a change since, then up to ``limit`` more (all with ``None``).

        >>> part = PartitionState()
        >>> _ = part.velocity_features(["a", "b"], ["m", "m"], [1.0, 1.0], [0, 0])
        >>> part.cut(); [key for key, _ in part.take_cut(1)]
        [b'a']
        >>> _ = part.velocity_features(["b"], ["m"], [5.0], [10])  # b as at the cut, encoded now
        >>> [(key, decode_card(value).amounts) for key, value in part.take_cut()]
        [(b'b', [1.0])]
        >>> part.cut_pending(), part.dirty_cards()
        (False, ['b'])
        """
        records, self._cut_records = self._cut_records, []
        cut, cards = self._cut, self._cards
        count = len(cut) if limit is None else min(limit, len(cut))
        for card in list(islice(cut, count)):
            del cut[card]
            records.append((card.encode(), encode_card(cards[card])))
        return records

    def _encode_cut_card(self, card: str) -> None:
        """Encode a card of the cut now, before a change (its record waits for take_cut)."""
        del self._cut[card]
        self._cut_records.append((card.encode(), encode_card(self._cards[card])))

    def restore(self, records: Iterable[tuple[bytes, bytes | None]]) -> list[str]:
        """Apply changelog records in order: a later record of a card wins, a ``None`` value (a
        tombstone) deletes the card. Restored cards are not dirty: the changelog has them. Refused
        while a cut is being taken (its cards must stay as they were at the cut).

        A record that cannot be read (a key that is not UTF-8, a value that is not a card's
        state: written by something else than a worker) is passed over, its card starting afresh,
        and said in the returned list: one such record must not keep its partition from ever
        being scored."""
        if self.cut_pending():
            raise StateError("cannot restore while a checkpoint's cut is being taken")
        cards, unreadable = self._cards, []
        for key, value in records:
            if key.startswith(SIDE_PREFIX):
                if value is None:
                    self._restored_side.pop(key, None)
                else:
                    self._restored_side[key] = value
                continue
            try:
                card = key.decode()
            except UnicodeDecodeError:
                unreadable.append(f"a key that is not UTF-8: {key[:64]!r}")
                continue
            cards.pop(card, None)
            self._dirty.pop(card, None)
            if value is not None:
                try:
                    cards[card] = decode_card(value)
                except StateError as exc:
                    unreadable.append(f"card {card[:64]!r}: {exc}")
        return unreadable

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
        if part._cut and card in part._cut:  # taken as it was at the cut, before it changes
            part._encode_cut_card(card)
        part._dirty[card] = None
        states = part._cards
        state = states.get(card)
        if state is None:
            state = states[card] = CardState([], [], [])
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
                del ts[:k], ams[:k], mers[:k]
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
                len({merchant, *mers[lo_h:hi]}),
                gap,
                amount / mean if mean else nan,  # mean is 0.0 before the first amount
            )
        )
        count = state.amount_count + 1
        state.amount_count = count
        state.amount_mean = mean + (amount - mean) / count
        if not keep:
            continue
        if hi == len(ts):
            ts.append(t)
            ams.append(amount)
            mers.append(merchant)
        else:
            ts.insert(hi, t)
            ams.insert(hi, amount)
            mers.insert(hi, merchant)
    return np.fromiter(out, dtype=np.float64, count=n * _WIDTH).reshape(n, _WIDTH)
