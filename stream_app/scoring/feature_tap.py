"""The feature tap: what the online learner needs of each scored batch, recorded by the worker.

The online learner (``stream-app learner``) learns from a label with the feature vector its event
was scored with; only the worker has that vector. This observer writes it: one
``scored-features`` record per batch and input partition (to the same partition number), the
matrix as float32 bytes beside the event ids, card ids, event times and offsets. One record per
batch, not per event, keeps its cost on the scoring thread to a copy and an Avro encode per
batch (``docs/online-learner.md``). A replayed batch is recorded again: the learner folds it.
"""

from __future__ import annotations

import numpy as np

from stream_app.codecs.avro import AvroRecordCodec
from stream_app.features import FEATURE_NAMES
from stream_app.scoring.observers import ScoredEvents
from stream_app.scoring.records import OutputRecord

#: events per record at most
CHUNK_EVENTS = 1000


class FeatureTap:
    """A :class:`~stream_app.scoring.observers.BatchObserver` recording scored feature vectors."""

    def __init__(self, codec: AvroRecordCodec, topic: str) -> None:
        self._codec = codec
        self._topic = topic

    def observe(self, events: ScoredEvents) -> list[OutputRecord]:
        partitions = np.asarray(events.partition)
        records = []
        for partition in np.unique(partitions).tolist():
            inside = np.flatnonzero(partitions == partition)
            for start in range(0, len(inside), CHUNK_EVENTS):
                records.append(
                    self._record(events, partition, inside[start : start + CHUNK_EVENTS])
                )
        return records

    def _record(self, events: ScoredEvents, partition: int, rows: np.ndarray) -> OutputRecord:
        picked = rows.tolist()
        value = {
            "model_version": events.model_version,
            "feature_names": list(FEATURE_NAMES),
            "event_id": [events.event_id[i] for i in picked],
            "card_id": [events.card_id[i] for i in picked],
            "event_time": events.event_time[rows].tolist(),
            "input_partition": partition,
            "input_offset": [events.offset[i] for i in picked],
            "features": events.features[rows].astype("<f4").tobytes(),
        }
        return OutputRecord(self._topic, None, self._codec.encode(value), partition=partition)
