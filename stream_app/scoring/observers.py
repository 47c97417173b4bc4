"""The per-batch observer seam: what a scored batch was, and those who watch it.

After each batch is scored, the loop hands its :class:`ScoredEvents` (one row per scored event,
dead letters excluded) to every registered :class:`BatchObserver` (monitors, the online learner,
metrics). An observer may return output records; the loop produces them with the batch's own
outputs, through the same producer, so the batch's input offsets are committed only once they
too were acknowledged (``docs/batch-observers.md``). A :class:`HoldingObserver` may hold a
batch's rows back and read several batches at once: the loop has it :meth:`~HoldingObserver.flush`
before every checkpoint is cut, and produces what that returns before the checkpoint's offsets
are committed.

An observer that raises does not stop scoring: the exception is logged (with its traceback the
first time, then every ``LOG_EVERY`` failures), counted in :attr:`Observers.failures`, and that
batch's records of that observer are dropped; the other observers and the scoring go on. An
observer watches, it never decides: a failure is its own, not the events' (they are not
dead-lettered).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from stream_app.events import FloatArray, IntArray
from stream_app.scoring.records import OutputRecord

log = logging.getLogger(__name__)

LOG_EVERY = 1000

_Observer = TypeVar("_Observer", bound="BatchObserver")


@dataclass(frozen=True, slots=True)
class ScoredEvents:
    """The scored events of one batch as columns, in consumption order (arrays are shared with
    the pipeline: read them, do not write them)."""

    event_id: list[str]
    card_id: list[str]
    event_time: IntArray  # event time, ms
    partition: list[int]
    offset: list[int]
    features: FloatArray  # one row per event, columns in the model's feature order
    score: FloatArray  # the champion's
    decision: list[str]  # "decline" or "approve", by the champion's threshold
    model_version: str
    challenger_score: FloatArray | None  # None without a challenger
    challenger_version: str | None

    def __len__(self) -> int:
        return len(self.event_id)

    def joined(self, later: ScoredEvents) -> ScoredEvents:
        """These events followed by ``later``'s, of the same batch and models (a batch the
        poison-pill policy split)."""
        return ScoredEvents.concatenated([self, later])

    @staticmethod
    def concatenated(parts: Sequence[ScoredEvents]) -> ScoredEvents:
        """The events of ``parts`` in order, scored by the same champion (the first part's
        challenger, its scores only if every part has them)."""
        first = parts[0]
        shadows = [part.challenger_score for part in parts if part.challenger_score is not None]
        return ScoredEvents(
            event_id=list(itertools.chain.from_iterable(part.event_id for part in parts)),
            card_id=list(itertools.chain.from_iterable(part.card_id for part in parts)),
            event_time=np.concatenate([part.event_time for part in parts]),
            partition=list(itertools.chain.from_iterable(part.partition for part in parts)),
            offset=list(itertools.chain.from_iterable(part.offset for part in parts)),
            features=np.concatenate([part.features for part in parts]),
            score=np.concatenate([part.score for part in parts]),
            decision=list(itertools.chain.from_iterable(part.decision for part in parts)),
            model_version=first.model_version,
            challenger_score=np.concatenate(shadows) if len(shadows) == len(parts) else None,
            challenger_version=first.challenger_version,
        )

    def without(self, partitions: Collection[int]) -> ScoredEvents:
        """These events but those of ``partitions``, in order."""
        return self.take(np.flatnonzero(~np.isin(self.partition, list(partitions))))

    def take(self, rows: IntArray) -> ScoredEvents:
        """The events at ``rows``, in that order."""
        picked: list[int] = rows.tolist()
        shadow = self.challenger_score
        return dataclasses.replace(
            self,
            event_id=[self.event_id[i] for i in picked],
            card_id=[self.card_id[i] for i in picked],
            event_time=self.event_time[rows],
            partition=[self.partition[i] for i in picked],
            offset=[self.offset[i] for i in picked],
            features=self.features[rows],
            score=self.score[rows],
            decision=[self.decision[i] for i in picked],
            challenger_score=None if shadow is None else shadow[rows],
        )


class BatchObserver(Protocol):
    """Sees every scored batch once, on the scoring thread: keep it to a few µs per event."""

    def observe(self, events: ScoredEvents) -> Sequence[OutputRecord]:
        """Records to produce with the batch's outputs (often none)."""
        ...


@runtime_checkable
class HoldingObserver(BatchObserver, Protocol):
    """An observer that may hold rows of a batch back, to read them with later batches."""

    def flush(self) -> Sequence[OutputRecord]:
        """Read every row held back now: records to produce before the next checkpoint's offsets
        are committed (its state must have read every row those offsets cover)."""
        ...


class Observers:
    """Runs the registered observers over a batch; one that raises is logged and counted."""

    def __init__(self, observers: Sequence[BatchObserver] = ()) -> None:
        self._observers = tuple(observers)
        self._holding = tuple(o for o in self._observers if isinstance(o, HoldingObserver))
        self.failures = 0  # observer calls that raised, all observers together
        self.produced: Counter[str] = Counter()  # the observers' records, by topic

    def __bool__(self) -> bool:
        return bool(self._observers)

    def observe(self, events: ScoredEvents) -> list[OutputRecord]:
        """Every observer's records for this batch, in registration order."""
        return self._gather(
            self._observers, lambda observer: observer.observe(events), f"a batch of {len(events)}"
        )

    def flush(self) -> list[OutputRecord]:
        """The records of the rows the holding observers held back (before a checkpoint)."""
        return self._gather(self._holding, lambda observer: observer.flush(), "a flush of")

    def _gather(
        self,
        observers: Sequence[_Observer],
        call: Callable[[_Observer], Sequence[OutputRecord]],
        what: str,
    ) -> list[OutputRecord]:
        records: list[OutputRecord] = []
        for observer in observers:
            try:
                records.extend(call(observer))
            except Exception:
                self.failures += 1
                if self.failures == 1 or self.failures % LOG_EVERY == 0:
                    log.exception(
                        "observer %s raised on %s events (%d failures so far): its records of "
                        "them are dropped, scoring goes on",
                        type(observer).__name__,
                        what,
                        self.failures,
                    )
        if records:
            self.produced.update(record.topic for record in records)
        return records
