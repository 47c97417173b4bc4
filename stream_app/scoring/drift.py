"""The drift observer: label-free monitors over the scored stream, per input partition and model.

For each input partition and champion version, a Page-Hinkley monitor on the score log-odds and
a PSI monitor per feature (``monitors/``), built from the training reference stored with the
version (``monitors.reference``), read every scored event of the partition in offset order: the
scores one by one, all features' columns together (vectorised, no sampling). The observer holds
the scored batches back (references to their columns) until ``update_rows`` rows wait, the model
version changes or a checkpoint is cut (:meth:`DriftObserver.flush`), then the monitors read them
all in one pass: the monitors' fixed cost per pass is paid once for several small batches. A
detection is a ``drift-events`` record, produced with the batch that completed the pass or
before the checkpoint (so a replay detects again at the same triggering event and the warehouse
folds it away). A version without a reference is scored unmonitored, logged once.

Each partition's monitor states are checkpointed with its cards, under a reserved changelog key
(:data:`MONITORS_KEY`), and restored with them on assignment: a partition whose card state was
rebuilt since this observer last saw it (assigned, restored) continues from its changelog. Rows
held back of a partition whose card state was dropped or rebuilt since (lost, rewound) are
dropped unread: they are scored again from the last checkpoint.

**Warm-up.** A partition whose card state started empty computes the velocity features from
partial history until its per-card windows (24 hours of event time) fill, and its scores run
above the training reference meanwhile: a trend the score monitor reads as drift. So its score
monitor skips the rows earlier in event time than the first row the partition's monitors were
offered plus ``score_warmup_ms``; from the first row at or after that it reads every row. The
feature monitors are not held back (an event's own features do not depend on the card state).
The warm-up's start and whether it has ended are checkpointed with the monitors (under
:data:`WARMUP_KEY`), so a restored partition goes on where it was; one restored with monitor
states written before the warm-up existed counts as warm.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from models.registry import ModelStore
from monitors.base import MonitorState, MonitorStateError
from monitors.features import PsiBank, PsiMonitor, update_banks
from monitors.reference import feature_monitors, score_monitor
from monitors.scores import ScoreMonitor, update_together
from stream_app.codecs.avro import AvroRecordCodec
from stream_app.errors import ModelError
from stream_app.events import IntArray
from stream_app.scoring.held_rows import HeldRows
from stream_app.scoring.observers import ScoredEvents
from stream_app.scoring.records import OutputRecord
from stream_app.state import CardStore, PartitionState
from stream_app.state.partition import SIDE_PREFIX

log = logging.getLogger(__name__)

#: the changelog key of a partition's monitor states (JSON: version → states)
MONITORS_KEY = SIDE_PREFIX + b"drift-monitors"
#: the changelog key of a partition's score warm-up (JSON: :meth:`WarmUp.encode`)
WARMUP_KEY = SIDE_PREFIX + b"drift-warmup"


@dataclass
class WarmUp:
    """How far a partition's score monitor is through its warm-up (of every model version).

    >>> WarmUp.decode(WarmUp(started_ms=1_000).encode())
    WarmUp(started_ms=1000, warm=False)
    >>> WarmUp.decode(b'{"started_ms": "x", "warm": false}')
    Traceback (most recent call last):
    monitors.base.MonitorStateError: a warm-up holds started_ms (an integer or null) and warm
    """

    #: event time (ms) of the first row the partition's monitors were offered
    started_ms: int | None = None
    #: a row at or after the warm-up's end was read: every row is read from then on
    warm: bool = False

    def encode(self) -> bytes:
        return json.dumps({"started_ms": self.started_ms, "warm": self.warm}).encode()

    @classmethod
    def decode(cls, saved: bytes) -> WarmUp:
        document = json.loads(saved)
        started, warm = document.get("started_ms"), document.get("warm")
        if not (started is None or type(started) is int) or type(warm) is not bool:
            raise MonitorStateError("a warm-up holds started_ms (an integer or null) and warm")
        return cls(started, warm)

    def rows_before_end(self, times: IntArray, warmup_ms: int) -> int:
        """How many of a partition's next rows (their event times ``times`` in offset order, at
        least one) come before the warm-up ends: those the score monitor skips.

        >>> warm_up = WarmUp()
        >>> warm_up.rows_before_end(np.array([100, 150]), 60), warm_up
        (2, WarmUp(started_ms=100, warm=False))
        >>> warm_up.rows_before_end(np.array([155, 170, 120]), 60), warm_up.warm
        (1, True)
        >>> warm_up.rows_before_end(np.array([0]), 60)  # warm: every row is read, late or not
        0
        """
        if self.warm:
            return 0
        if self.started_ms is None:
            self.started_ms = int(times[0])
        ended = times >= self.started_ms + warmup_ms
        if not ended.any():
            return len(times)
        self.warm = True
        return int(ended.argmax())


@dataclass
class VersionMonitors:
    """The monitors of one model version over one input partition."""

    score: ScoreMonitor
    features: dict[str, PsiMonitor]
    bank: PsiBank = field(init=False)
    #: monitors of equal layouts (features and bins) are updated together across partitions
    layout: tuple[tuple[str, ...], bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.bank = PsiBank(list(self.features.values()))
        self.layout = (tuple(self.features), self.bank.layout)

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
    """A :class:`~stream_app.scoring.observers.HoldingObserver` running the drift monitors."""

    def __init__(
        self,
        models: ModelStore,
        cards: CardStore,
        codec: AvroRecordCodec,
        topic: str,
        worker_id: str,
        update_rows: int = 1,
        score_warmup_ms: int = 0,
    ) -> None:
        self._models = models
        self._update_rows = update_rows
        self._score_warmup_ms = score_warmup_ms
        self._cards = cards
        self._codec = codec
        self._topic = topic
        self._worker_id = worker_id
        self._references: dict[str, Reference | None] = {}
        # partition → (the card state its monitors were restored with, version → monitors,
        # its score warm-up)
        self._partitions: dict[int, tuple[PartitionState, dict[str, VersionMonitors], WarmUp]] = {}
        # batches held back (of one monitored version), each with its partitions' card states
        self._held: list[tuple[ScoredEvents, dict[int, PartitionState]]] = []
        self._held_rows = 0

    def observe(self, events: ScoredEvents) -> list[OutputRecord]:
        """Hold the batch back; the records of a pass over what is held once ``update_rows``
        rows wait (or of the rows of another version, held before a model swap)."""
        records: list[OutputRecord] = []
        if self._held and self._held[0][0].model_version != events.model_version:
            records = self.flush()
        if not len(events) or self._reference(events.model_version) is None:
            return records
        cards = self._cards
        self._held.append((events, {p: cards.partition(p) for p in set(events.partition)}))
        self._held_rows += len(events)
        if self._held_rows >= self._update_rows:
            records.extend(self.flush())
        return records

    def flush(self) -> list[OutputRecord]:
        """The monitors read every row held back, in one pass: the records of their detections.
        Rows of a partition whose card state changed since they were held are dropped."""
        held, self._held, self._held_rows = self._held, [], 0
        current = [self._current(events, states) for events, states in held]
        parts = [events for events in current if len(events)]
        if not parts:
            return []
        rows = HeldRows.of(parts)
        reference = self._reference(rows.model_version)
        return [] if reference is None else self._update(rows, reference)

    def _current(self, events: ScoredEvents, states: dict[int, PartitionState]) -> ScoredEvents:
        """``events`` but the rows of partitions whose card state is no longer ``states``'."""
        cards = self._cards
        stale = [p for p, state in states.items() if cards.get(p) is not state]
        if stale:
            log.info("partitions %s: state rebuilt, their held rows dropped unread", stale)
        return events.without(stale) if stale else events

    def _update(self, events: HeldRows, reference: Reference) -> list[OutputRecord]:
        """The monitors read ``events``, all partitions in one pass: their detections' records."""
        partitions = events.partition
        counts = np.bincount(partitions)
        partition_ids: list[int] = np.flatnonzero(counts).tolist()
        sizes: list[int] = counts[partition_ids].tolist()
        # the batch's rows partition by partition (ascending), each partition's in offset order
        order = np.argsort(partitions, kind="stable")
        starts = list(itertools.accumulate(sizes[:-1], initial=0))
        held = [self._version_monitors(p, events.model_version, reference) for p in partition_ids]
        # the score monitors read each partition's rows from the first after its warm-up
        skips = [
            self._rows_in_warm_up(p, events, order[start : start + size])
            for p, start, size in zip(partition_ids, starts, sizes, strict=True)
        ]
        read = [size - skip for size, skip in zip(sizes, skips, strict=True)]
        read_from = [start + skip for start, skip in zip(starts, skips, strict=True)]
        scores = order
        if any(skips):
            scores = np.concatenate(
                [order[s : s + n] for s, n in zip(read_from, read, strict=True)]
            )
        score_alarms = update_together([m.score for m in held], events.score[scores], read)
        # each partition's records: its score monitor's, then its feature monitors' in order
        found: list[list[OutputRecord]] = [
            [
                self._record(events, p, int(order[start + i]), "score", "", m.score, statistic)
                for i, statistic in raised
            ]
            for p, m, start, raised in zip(
                partition_ids, held, read_from, score_alarms, strict=True
            )
        ]
        for group in _same_layout(held):
            wanted = np.array([reference.columns[name] for name in held[group[0]].features])
            rows = np.concatenate([order[starts[k] : starts[k] + sizes[k]] for k in group])
            columns = events.features[rows[:, None], wanted]
            alarms = update_banks([held[k].bank for k in group], columns, [sizes[k] for k in group])
            for k, by_monitor in zip(group, alarms, strict=True):
                for (name, monitor), raised in zip(
                    held[k].features.items(), by_monitor, strict=True
                ):
                    found[k].extend(
                        self._record(
                            events,
                            partition_ids[k],
                            int(order[starts[k] + i]),
                            "feature",
                            name,
                            monitor,
                            statistic,
                        )
                        for i, statistic in raised
                    )
        return [record for records in found for record in records]

    def _version_monitors(
        self, partition: int, version: str, reference: Reference
    ) -> VersionMonitors:
        """The monitors of ``version`` over ``partition``, new ones if it has none yet."""
        versions = self.monitors(partition)
        monitors = versions.get(version)
        if monitors is None:
            monitors = versions[version] = VersionMonitors(
                score_monitor(reference.state), feature_monitors(reference.state)
            )
        return monitors

    def _rows_in_warm_up(self, partition: int, events: HeldRows, rows: IntArray) -> int:
        """How many of ``rows`` (``partition``'s, in offset order) its score monitor skips."""
        warm_up = self.warm_up(partition)
        if warm_up.warm:
            return 0
        skip = warm_up.rows_before_end(events.event_times[rows], self._score_warmup_ms)
        if warm_up.warm:
            log.info(
                "partition %d: score monitor warmed up, reading from offset %d",
                partition,
                events.offset(int(rows[skip])),
            )
        return skip

    def monitors(self, partition: int) -> dict[str, VersionMonitors]:
        """The monitors of ``partition`` by version: restored from its changelog if its card
        state was (re)built since they were last used."""
        return self._partition(partition)[1]

    def warm_up(self, partition: int) -> WarmUp:
        """The score warm-up of ``partition``, restored with its monitors."""
        return self._partition(partition)[2]

    def _partition(
        self, partition: int
    ) -> tuple[PartitionState, dict[str, VersionMonitors], WarmUp]:
        state = self._cards.partition(partition)
        held = self._partitions.get(partition)
        if held is not None and held[0] is state:
            return held
        saved = state.side_state(MONITORS_KEY)
        versions = _restore(partition, saved)
        warm_up = _restore_warm_up(partition, state.side_state(WARMUP_KEY), saved is not None)
        state.keep_side_state(MONITORS_KEY, lambda: _encode(versions))
        state.keep_side_state(WARMUP_KEY, warm_up.encode)
        self._partitions[partition] = held = (state, versions, warm_up)
        return held

    def _record(
        self,
        events: HeldRows,
        partition: int,
        row: int,
        signal: str,
        feature: str,
        monitor: ScoreMonitor | PsiMonitor,
        statistic: float,
    ) -> OutputRecord:
        detector, threshold = monitor.kind, monitor.threshold
        offset = events.offset(row)
        log.info(
            "drift: partition %d, model %s, %s %s: %s %.4g > %.4g at offset %d",
            partition,
            events.model_version,
            signal,
            feature,
            detector,
            statistic,
            threshold,
            offset,
        )
        value = {
            "event_time": events.event_time(row),
            "detected_time": int(time.time() * 1000),
            "signal": signal,
            "feature": feature,
            "detector": detector,
            "statistic": float(statistic),
            "threshold": float(threshold),
            "model_version": events.model_version,
            "input_partition": partition,
            "input_offset": offset,
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


def _same_layout(held: list[VersionMonitors]) -> list[list[int]]:
    """Indexes of ``held`` grouped by layout (one group unless a restored state differs)."""
    groups: dict[tuple[tuple[str, ...], bytes], list[int]] = {}
    for k, monitors in enumerate(held):
        groups.setdefault(monitors.layout, []).append(k)
    return list(groups.values())


def _encode(versions: dict[str, VersionMonitors]) -> bytes:
    return json.dumps({v: m.save() for v, m in versions.items()}).encode()


def _restore_warm_up(partition: int, saved: bytes | None, monitors_saved: bool) -> WarmUp:
    """The warm-up a changelog record holds; without one, a partition restored with monitor
    states (written before the warm-up existed) is warm, any other starts its warm-up."""
    if saved is None:
        return WarmUp(warm=monitors_saved)
    try:
        return WarmUp.decode(saved)
    except (ValueError, AttributeError, MonitorStateError) as exc:
        log.warning(
            "partition %d: score warm-up not restored (%s): it starts again", partition, exc
        )
        return WarmUp()


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
