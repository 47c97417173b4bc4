"""The online learner's state and what it does with each record: score, wait, learn.

A ``scored-features`` record (a worker's batch of one input partition) is scored by the River
model first, then its vectors wait for their labels; a label finds its vector and the model
learns from it (its first label only: a second one, from the other source, finds nothing). A
label that comes before its vector waits for it. Scoring always comes before learning from the
same event, so a shadow score never saw its own label. Both waiting rooms hold at most
``capacity`` events; the oldest leave first (counted as ``expired``).

The whole state, offsets of both input topics included, is one object saved by
:mod:`stream_app.online.checkpoint`: restored, it replays the records after the cut exactly as
before (same scores, so the warehouse folds the repeated shadow predictions away).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.online import OnlineModel
from stream_app.events import MAX_ID_LENGTH, FloatArray


@dataclass
class LearnerStats:
    scored: int = 0  # events given a shadow score
    learned: int = 0  # labels learnt from
    expired: int = 0  # vectors or labels pushed out of a full waiting room
    skipped_batches: int = 0  # scored-features records of other features, or malformed

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


#: the per-event columns of a scored-features record besides ``event_id``
_PER_EVENT = ("card_id", "event_time", "input_offset")


@dataclass(frozen=True)
class ShadowScores:
    """The shadow scores of one scored-features record."""

    scores: FloatArray
    decline: list[bool]


@dataclass
class LearnerState:
    """Model, waiting vectors and labels, and the next offset of every input partition."""

    model: OnlineModel
    capacity: int
    vectors: OrderedDict[str, FloatArray] = field(default_factory=OrderedDict)
    labels: OrderedDict[str, bool] = field(default_factory=OrderedDict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    stats: LearnerStats = field(default_factory=LearnerStats)

    def on_features(self, value: dict[str, Any], threshold: float) -> ShadowScores | None:
        """Score a record's vectors, keep them for their labels, learn any label already here;
        ``None`` if its features are not the model's."""
        columns = len(self.model.feature_names)
        events = len(value["event_id"])
        if (
            tuple(value["feature_names"]) != self.model.feature_names
            or len(value["features"]) != 4 * columns * events
            or any(len(value[k]) != events for k in _PER_EVENT if k in value)
            or any(len(i) > MAX_ID_LENGTH for i in (*value["event_id"], *value.get("card_id", ())))
        ):  # another model's features, a record whose columns do not add up, or ids no worker
            # writes (a shadow prediction with a 1 MB id: more than the producer takes)
            self.stats.skipped_batches += 1
            return None
        matrix = np.frombuffer(value["features"], dtype="<f4").reshape(-1, columns)
        matrix = matrix.astype(np.float64)
        scores = self.model.predict(matrix)
        self.stats.scored += len(scores)
        for event_id, row in zip(value["event_id"], matrix, strict=True):
            label = self.labels.pop(event_id, None)
            if label is None:
                self._keep(self.vectors, event_id, row)
            else:
                self._learn(row, label)
        return ShadowScores(scores, (scores >= threshold).tolist())

    def on_label(self, event_id: str, is_fraud: bool) -> None:
        """Learn from the label if its vector waits, else keep it until the vector comes."""
        row = self.vectors.pop(event_id, None)
        if row is None:
            self._keep(self.labels, event_id, is_fraud)
        else:
            self._learn(row, is_fraud)

    def _learn(self, row: FloatArray, is_fraud: bool) -> None:
        self.model.learn(row[np.newaxis, :], [is_fraud])
        self.stats.learned += 1

    def _keep(self, room: OrderedDict[str, Any], event_id: str, item: Any) -> None:
        room[event_id] = item
        if len(room) > self.capacity:
            room.popitem(last=False)
            self.stats.expired += 1
