"""The per-batch observer seam: what a scored batch was, and those who watch it.

After each batch is scored, the loop hands its :class:`ScoredEvents` (one row per scored event,
dead letters excluded) to every registered :class:`BatchObserver` (monitors, the online learner,
metrics). An observer may return output records; the loop produces them with the batch's own
outputs, through the same producer, so the batch's input offsets are committed only once they
too were acknowledged (``docs/batch-observers.md``).

An observer that raises does not stop scoring: the exception is logged (with its traceback the
first time, then every ``LOG_EVERY`` failures), counted in :attr:`Observers.failures`, and that
batch's records of that observer are dropped; the other observers and the scoring go on. An
observer watches, it never decides: a failure is its own, not the events' (they are not
dead-lettered).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from stream_app.events import FloatArray, IntArray
from stream_app.scoring.records import OutputRecord

log = logging.getLogger(__name__)

LOG_EVERY = 1000


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
        shadow = None
        if self.challenger_score is not None and later.challenger_score is not None:
            shadow = np.concatenate([self.challenger_score, later.challenger_score])
        return ScoredEvents(
            event_id=self.event_id + later.event_id,
            card_id=self.card_id + later.card_id,
            event_time=np.concatenate([self.event_time, later.event_time]),
            partition=self.partition + later.partition,
            offset=self.offset + later.offset,
            features=np.concatenate([self.features, later.features]),
            score=np.concatenate([self.score, later.score]),
            decision=self.decision + later.decision,
            model_version=self.model_version,
            challenger_score=shadow,
            challenger_version=self.challenger_version,
        )


class BatchObserver(Protocol):
    """Sees every scored batch once, on the scoring thread: keep it to a few µs per event."""

    def observe(self, events: ScoredEvents) -> Sequence[OutputRecord]:
        """Records to produce with the batch's outputs (often none)."""
        ...


class Observers:
    """Runs the registered observers over a batch; one that raises is logged and counted."""

    def __init__(self, observers: Sequence[BatchObserver] = ()) -> None:
        self._observers = tuple(observers)
        self.failures = 0  # observer calls that raised, all observers together
        self.produced: Counter[str] = Counter()  # the observers' records, by topic

    def __bool__(self) -> bool:
        return bool(self._observers)

    def observe(self, events: ScoredEvents) -> list[OutputRecord]:
        """Every observer's records for this batch, in registration order."""
        records: list[OutputRecord] = []
        for observer in self._observers:
            try:
                records.extend(observer.observe(events))
            except Exception:
                self.failures += 1
                if self.failures == 1 or self.failures % LOG_EVERY == 0:
                    log.exception(
                        "observer %s raised on a batch of %d events (%d failures so far): its "
                        "records of this batch are dropped, scoring goes on",
                        type(observer).__name__,
                        len(events),
                        self.failures,
                    )
        if records:
            self.produced.update(record.topic for record in records)
        return records
