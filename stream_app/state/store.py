"""Per-card state of every partition a worker is assigned, and the entry points that use it.

State follows the hot-path consumer's assignment: one :class:`PartitionState` per input
partition, written to a compacted changelog topic at each checkpoint (:meth:`CardStore.cut`),
read back on assignment (:meth:`CardStore.restore`) and dropped on revoke. Kafka itself is the
caller's business: this module only turns state into records and records into state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from stream_app.events import FloatArray
from stream_app.state.card import CardState, StateError
from stream_app.state.partition import (
    Amounts,
    EventTimes,
    PartitionState,
    velocity_features,
)

PartitionIds = npt.NDArray[np.integer[Any]] | Sequence[int]


class CardStore:
    """Input partition → :class:`PartitionState`."""

    __slots__ = ("_partitions",)

    def __init__(self) -> None:
        self._partitions: dict[int, PartitionState] = {}

    def partition(self, partition: int) -> PartitionState:
        """The state of ``partition``, created empty on first use."""
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = PartitionState()
        return state

    def get(self, partition: int) -> PartitionState | None:
        """The state of ``partition``, if it has one (not created).

        >>> store = CardStore()
        >>> store.get(3) is None
        True
        >>> state = store.partition(3)
        >>> store.get(3) is state
        True
        """
        return self._partitions.get(partition)

    def card(self, partition: int, card_id: str) -> CardState:
        """The state of a card already seen (by its batch's features); KeyError if not.

        >>> store = CardStore()
        >>> _ = store.partition(1).velocity_features(["c1"], ["m1"], [9.5], [1_000])
        >>> store.card(1, "c1") is store.partition(1).get("c1")
        True
        >>> store.card(0, "c1")
        Traceback (most recent call last):
        KeyError: 'no state for card c1 of partition 0'
        """
        state = self.partition(partition).get(card_id)
        if state is None:
            raise KeyError(f"no state for card {card_id} of partition {partition}")
        return state

    def assigned(self) -> list[int]:
        """Partitions that currently hold state, ascending."""
        return sorted(self._partitions)

    def drop(self, partition: int) -> None:
        """Forget a partition (on revoke). Checkpoint it first (its cut taken, its dirty cards
        written): unwritten changes are lost with it."""
        self._partitions.pop(partition, None)

    def cut(self) -> None:
        """Start a checkpoint in every partition (:meth:`PartitionState.cut`)."""
        for state in self._partitions.values():
            state.cut()

    def cut_pending(self) -> bool:
        """Whether any partition has records of its cut still to be taken."""
        return any(state.cut_pending() for state in self._partitions.values())

    def take_cut(self, limit: int | None = None) -> list[tuple[int, bytes, bytes | None]]:
        """``(partition, key, value)`` records of the cut, partitions in order: every record
        encoded before a change, then the records of up to ``limit`` more cards in all
        (``None``: all), each card's head and changed hours (:meth:`PartitionState.take_cut`).

        >>> store = CardStore()
        >>> _ = store.partition(0).velocity_features(["a", "b"], ["m", "m"], [1.0, 1.0], [0, 0])
        >>> _ = store.partition(1).velocity_features(["c"], ["m"], [1.0], [0])
        >>> store.cut(); [(p, key) for p, key, _ in store.take_cut(2)], store.cut_pending()
        ([(0, b'a'), (0, b'a\\x010'), (0, b'b'), (0, b'b\\x010')], True)
        >>> [(p, key) for p, key, _ in store.take_cut(2)], store.cut_pending()
        ([(1, b'c'), (1, b'c\\x010')], False)
        """
        records: list[tuple[int, bytes, bytes | None]] = []
        left = limit
        for partition in self.assigned():
            state = self._partitions[partition]
            before = state.cut_cards_left()
            taken = state.take_cut(left)
            if left is not None:
                left = max(0, left - (before - state.cut_cards_left()))
            records.extend((partition, key, value) for key, value in taken)
        return records

    def restore(self, partition: int, records: Iterable[tuple[bytes, bytes | None]]) -> list[str]:
        """Rebuild ``partition`` from its changelog: later records win, ``None`` deletes; what
        could not be read, passed over (:meth:`PartitionState.restore`).

        >>> store = CardStore()
        >>> _ = store.partition(0).velocity_features(["c1"], ["m1"], [9.5], [1_000])
        >>> store.cut(); restored = CardStore()
        >>> restored.restore(0, [(key, value) for _, key, value in store.take_cut()])
        []
        >>> restored.partition(0).get("c1") == store.partition(0).get("c1")
        True
        >>> restored.restore(0, [(b"c1", None), (b"c2", b"not a state")])
        ["card 'c2': undecodable card state: Expected `array`, got `int`"]
        >>> len(restored.partition(0))
        0
        """
        return self.partition(partition).restore(records)


def batch_velocity_features(
    store: CardStore,
    partitions: PartitionIds,
    cards: Sequence[str],
    merchants: Sequence[str],
    amounts: Amounts,
    times: EventTimes,
) -> FloatArray:
    """Velocity features of a batch whose rows come from several partitions, rows in the
    batch's order; each partition's events are processed in their order within the batch, all
    partitions in one loop over the batch.

    >>> store = CardStore()
    >>> batch_velocity_features(
    ...     store, [1, 0, 1], ["a", "b", "a"], ["m", "m", "m"], [1.0, 2.0, 3.0], [0, 0, 500]
    ... )[:, :2].tolist()
    [[1.0, 1.0], [1.0, 2.0], [2.0, 4.0]]
    """
    parts = np.asarray(partitions, dtype=np.int64)
    if len(parts) != len(cards):
        raise StateError(f"{len(parts)} partitions for {len(cards)} events")
    ids: list[int] = parts.tolist()
    states = {p: store.partition(p) for p in set(ids)}
    return velocity_features([states[p] for p in ids], cards, merchants, amounts, times)


def replay_velocity_features(
    cards: Sequence[str],
    merchants: Sequence[str],
    amounts: Amounts,
    times: EventTimes,
) -> FloatArray:
    """Velocity features for training: the serving code over a fresh store with one pseudo
    partition, events in the given order (the order the workers would consume them).

    >>> replay_velocity_features(["c", "c"], ["m1", "m2"], [10.0, 30.0], [0, 2_500])[1].tolist()
    [2.0, 40.0, 2.0, 40.0, 2.0, 40.0, 2.0, 2.5, 3.0]
    """
    return CardStore().partition(0).velocity_features(cards, merchants, amounts, times)
