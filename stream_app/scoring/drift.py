"""The drift observer: label-free monitors over the scored stream, per input partition and model.

For each input partition and champion version, a Page-Hinkley monitor on the score log-odds and
a PSI monitor per feature (``monitors/``), built from the training reference stored with the
version (``monitors.reference``), read every scored event of the partition in offset order: the
scores one by one, all features' columns together (vectorised, no sampling). A
detection is a ``drift-events`` record, produced with the batch (so a replay detects again at
the same triggering event and the warehouse folds it away). A version without a reference
is scored unmonitored, logged once.

Each partition's monitor states are checkpointed with its cards, under a reserved changelog key
(:data:`MONITORS_KEY`), and restored with them on assignment: a partition whose card state was
rebuilt since this observer last saw it (assigned, restored) continues from its changelog.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from models.registry import ModelStore
from monitors.base import MonitorState, MonitorStateError
from monitors.features import PsiBank, PsiMonitor
from monitors.reference import feature_monitors, score_monitor
from monitors.scores import ScoreMonitor
from stream_app.codecs.avro import AvroRecordCodec
from stream_app.errors import ModelError
from stream_app.scoring.observers import ScoredEvents
from stream_app.scoring.records import OutputRecord
from stream_app.state import CardStore, PartitionState
from stream_app.state.partition import SIDE_PREFIX

log = logging.getLogger(__name__)

#: the changelog key of a partition's monitor states (JSON: version → states)
MONITORS_KEY = SIDE_PREFIX + b"drift-monitors"


@dataclass
class VersionMonitors:
    """The monitors of one model version over one input partition."""

    score: ScoreMonitor
    features: dict[str, PsiMonitor]
    bank: PsiBank = field(init=False)

    def __post_init__(self) -> None:
        self.bank = PsiBank(list(self.features.values()))

    def save(self) -> MonitorState:
        return {
            "score": self.score.save(),
            "features": {name: m.save() for name, m in self.features.items()},
        }

    @classmethod
    def from_state(cls, state: MonitorState) -> VersionMonitors:
        score, features = state.get("score"), state.get("features")
        if not isinstance(score, dict) or not isinstance(features, dict):
            raise MonitorStateError("a version's state holds 'score' and 'features' objects")
        restored = {}
        for name, saved in features.items():
            if not isinstance(saved, dict):
                raise MonitorStateError(f"features.{name}: expected an object")
            restored[name] = PsiMonitor.from_state(saved)
        return cls(ScoreMonitor.from_state(score), restored)


@dataclass(frozen=True)
class Reference:
    """A version's training reference and the column of each monitored feature."""

    state: MonitorState
    columns: dict[str, int]


class DriftObserver:
    """A :class:`~stream_app.scoring.observers.BatchObserver` running the drift monitors."""

    def __init__(
        self,
        models: ModelStore,
        cards: CardStore,
        codec: AvroRecordCodec,
        topic: str,
        worker_id: str,
    ) -> None:
        self._models = models
        self._cards = cards
        self._codec = codec
        self._topic = topic
        self._worker_id = worker_id
        self._references: dict[str, Reference | None] = {}
        # partition → (the card state its monitors were restored with, version → monitors)
        self._partitions: dict[int, tuple[PartitionState, dict[str, VersionMonitors]]] = {}

    def observe(self, events: ScoredEvents) -> list[OutputRecord]:
        reference = self._reference(events.model_version)
        if reference is None or not len(events):
            return []
        partitions = np.asarray(events.partition)
        records = []
        for partition in np.unique(partitions).tolist():
            rows = np.flatnonzero(partitions == partition)
            versions = self.monitors(partition)
            monitors = versions.get(events.model_version)
            if monitors is None:
                monitors = versions[events.model_version] = VersionMonitors(
                    score_monitor(reference.state), feature_monitors(reference.state)
                )
            records.extend(self._update(monitors, reference, events, rows, partition))
        return records

    def monitors(self, partition: int) -> dict[str, VersionMonitors]:
        """The monitors of ``partition`` by version: restored from its changelog if its card
        state was (re)built since they were last used."""
        state = self._cards.partition(partition)
        held = self._partitions.get(partition)
        if held is not None and held[0] is state:
            return held[1]
        versions = _restore(partition, state.side_state(MONITORS_KEY))
        state.keep_side_state(MONITORS_KEY, lambda: _encode(versions))
        self._partitions[partition] = (state, versions)
        return versions

    def _update(
        self,
        monitors: VersionMonitors,
        reference: Reference,
        events: ScoredEvents,
        rows: np.ndarray,
        partition: int,
    ) -> list[OutputRecord]:
        score = monitors.score
        found = [
            (int(rows[i]), "score", "", score.kind, statistic, score.threshold)
            for i, statistic in score.update_many(events.score[rows])
        ]
        columns = events.features[rows][:, [reference.columns[name] for name in monitors.features]]
        alarms = monitors.bank.update_many(columns)
        for (name, monitor), raised in zip(monitors.features.items(), alarms, strict=True):
            for i, statistic in raised:
                row = int(rows[i])
                found.append((row, "feature", name, monitor.kind, statistic, monitor.threshold))
        return [self._record(events, partition, *detection) for detection in found]

    def _record(
        self,
        events: ScoredEvents,
        partition: int,
        row: int,
        signal: str,
        feature: str,
        detector: str,
        statistic: float,
        threshold: float,
    ) -> OutputRecord:
        log.info(
            "drift: partition %d, model %s, %s %s: %s %.4g > %.4g at offset %d",
            partition,
            events.model_version,
            signal,
            feature,
            detector,
            statistic,
            threshold,
            events.offset[row],
        )
        value = {
            "event_time": int(events.event_time[row]),
            "detected_time": int(time.time() * 1000),
            "signal": signal,
            "feature": feature,
            "detector": detector,
            "statistic": float(statistic),
            "threshold": float(threshold),
            "model_version": events.model_version,
            "input_partition": partition,
            "input_offset": events.offset[row],
            "worker_id": self._worker_id,
        }
        return OutputRecord(self._topic, events.model_version.encode(), self._codec.encode(value))

    def _reference(self, version: str) -> Reference | None:
        """The version's reference, read once; ``None`` (logged once) if it has none."""
        if version in self._references:
            return self._references[version]
        reference = None
        try:
            metadata = self._models.metadata(version)
        except ModelError as exc:
            log.warning("model %s: no metadata (%s): scored unmonitored", version, exc)
        else:
            if metadata.monitoring:
                names = metadata.feature_names
                features = metadata.monitoring.get("features", {})
                columns = {name: names.index(name) for name in features}
                reference = Reference(metadata.monitoring, columns)
            else:
                log.warning(
                    "model %s has no training reference (registered before the drift "
                    "monitors): scored unmonitored",
                    version,
                )
        self._references[version] = reference
        return reference


def _encode(versions: dict[str, VersionMonitors]) -> bytes:
    return json.dumps({v: m.save() for v, m in versions.items()}).encode()


def _restore(partition: int, saved: bytes | None) -> dict[str, VersionMonitors]:
    """The monitors a changelog record holds; none (logged) if it cannot be read."""
    if saved is None:
        return {}
    try:
        document = json.loads(saved)
        return {v: VersionMonitors.from_state(state) for v, state in document.items()}
    except (ValueError, AttributeError, MonitorStateError) as exc:
        log.warning(
            "partition %d: drift monitors not restored (%s): they start afresh", partition, exc
        )
        return {}
