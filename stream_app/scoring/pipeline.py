"""The hot path's transform: raw input records of one batch in, output records out.

Decode failures and the events ``stream_app.event_checks`` refuse are data: each becomes a
dead-letter record with its reason, never an exception.
Per-card state (``stream_app.state``) is read and updated here, in offset order per partition;
the loop writes its changelog at each checkpoint.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from stream_app.codecs.avro import AvroRecordCodec
from stream_app.codecs.detect import TransactionDecoder
from stream_app.control.modelset import ModelSet
from stream_app.errors import CodecError
from stream_app.event_checks import EventChecks
from stream_app.events import Transaction, TransactionBatch
from stream_app.features import compute_features
from stream_app.kafka.records import InputRecord
from stream_app.scoring.alerting import AlertBuilder
from stream_app.scoring.dead_letters import DeadLetters, PlainRecord
from stream_app.scoring.observers import ScoredEvents
from stream_app.scoring.records import Headers, OutputRecord, Undelivered
from stream_app.settings import Topics
from stream_app.state import CardStore, batch_velocity_features
from stream_app.timing import StageTimes


@dataclass(slots=True)
class ScoredBatch:
    """Everything one input batch produces, and the offsets to commit once it is delivered;
    ``events``, what was scored (``None`` when nothing was), is what observers see."""

    outputs: list[OutputRecord] = field(default_factory=list)
    scored: int = 0
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    events: ScoredEvents | None = None

    @property
    def dead_lettered(self) -> int:
        return self.dead_letter_reasons.total()

    def dead_letter(self, record: OutputRecord, reason: str) -> None:
        """Add the dead letter ``record``, sent for ``reason``."""
        self.outputs.append(record)
        self.dead_letter_reasons[reason] += 1

    def absorb(self, later: ScoredBatch) -> None:
        """Add what a later part of the same batch produced."""
        self.outputs.extend(later.outputs)
        if self.events is None or later.events is None:
            self.events = self.events or later.events
        else:
            self.events = self.events.joined(later.events)
        self.scored += later.scored
        self.dead_letter_reasons.update(later.dead_letter_reasons)
        self.alerts += later.alerts
        self.next_offsets.update(later.next_offsets)


class ScoringPipeline:
    """Decode, compute features, predict and build the output records of one batch."""

    def __init__(
        self,
        decoder: TransactionDecoder,
        checks: EventChecks,
        predictions: AvroRecordCodec,
        dead_letters: DeadLetters,
        topics: Topics,
        worker_id: str,
        max_key_bytes: int,
        store: CardStore,
        alerts: AlertBuilder,
    ) -> None:
        self._decoder = decoder
        self._checks = checks
        self._predictions = predictions
        self.dead_letters = dead_letters
        self._topics = topics
        self._worker_id = worker_id
        self._max_key_bytes = max_key_bytes
        self.store = store
        self.alerts = alerts

    def process(
        self, records: Sequence[InputRecord], models: ModelSet, times: StageTimes | None = None
    ) -> ScoredBatch:
        """Score a batch with ``models``; ``times`` gets laps for decode, features, predict, encode,
        alerts and release (freeing the batch's decoded events).

        The champion decides; a challenger, if set, is scored on the same features in shadow.
        """
        times = times or StageTimes()
        result = ScoredBatch()
        valid: list[Transaction] = []
        sources: list[InputRecord] = []
        now = self._checks.clock()  # once per batch, not per event
        for record in records:
            topic, partition, offset = (
                record.topic() or "",
                record.partition() or 0,
                record.offset() or 0,
            )
            result.next_offsets[(topic, partition)] = offset + 1
            try:
                self._check_key(record.key())
                event = self._decoder.decode(record.value())
                self._checks.check(event, record.key(), record.timestamp(), now)
                valid.append(event)
                sources.append(record)
            except CodecError as exc:
                result.dead_letter(self.dead_letters.of(record, exc.reason, exc.detail), exc.reason)
        times.lap("decode")
        if valid:
            result.outputs.extend(self._score(valid, sources, models, times, result))
            result.scored = len(valid)
            # the batch's decoded events freed here, timed as the pipeline's, not the next stage's
            valid.clear()
            sources.clear()
            times.lap("release")
        return result

    def _score(
        self,
        events: list[Transaction],
        sources: list[InputRecord],
        models: ModelSet,
        times: StageTimes,
        result: ScoredBatch,
    ) -> list[OutputRecord]:
        batch = TransactionBatch.from_transactions(events)
        partitions = [source.partition() or 0 for source in sources]
        velocity = batch_velocity_features(
            self.store, partitions, batch.card_id, batch.merchant_id, batch.amount, batch.event_time
        )
        features = compute_features(batch, velocity)
        times.lap("features")
        champion, challenger = models.champion, models.challenger
        scores = champion.predict(features)
        shadow: list[float | None] = [None] * len(events)
        challenger_scores, challenger_version = None, None
        if challenger is not None:
            challenger_scores = challenger.predict(features)
            shadow = challenger_scores.tolist()
            challenger_version = challenger.version
        times.lap("predict")
        create_times = [source.timestamp()[1] for source in sources]
        card_partition = dict(zip(batch.card_id, partitions, strict=True))
        pending_alerts = self.alerts.begin(
            batch,
            features,
            scores,
            champion,
            create_times,
            lambda card: self.store.card(card_partition[card], card),
        )
        scored = ScoredEvents(
            event_id=batch.event_id,
            card_id=batch.card_id,
            event_time=batch.event_time,
            partition=partitions,
            offset=[source.offset() or 0 for source in sources],
            features=features,
            score=scores,
            decision=np.where(scores >= champion.threshold, "decline", "approve").tolist(),
            model_version=champion.version,
            challenger_score=challenger_scores,
            challenger_version=challenger_version,
        )
        result.events = scored
        values = self._predictions.encode_columns(
            {
                "event_id": batch.event_id,
                "card_id": batch.card_id,
                "event_time": batch.event_time,
                "input_create_time": create_times,
                "score": scores,
                "decision": scored.decision,
                "source_partition": partitions,
                "source_offset": scored.offset,
                "challenger_score": shadow,
            },
            constants={
                "scored_time": int(time.time() * 1000),
                "model_version": champion.version,
                "worker_id": self._worker_id,
                "challenger_version": challenger_version,
            },
        )
        headers: Headers = [("model-version", champion.version.encode())]
        topic = self._topics.predictions
        outputs = [
            OutputRecord(topic, card.encode(), value, headers)
            for card, value in zip(batch.card_id, values, strict=True)
        ]
        times.lap("encode")
        alerts = pending_alerts.records()
        outputs.extend(OutputRecord(self._topics.alerts, a.key, a.value) for a in alerts)
        result.alerts = len(alerts)
        times.lap("alerts")
        return outputs

    def _check_key(self, key: bytes | None) -> None:
        if key is not None and len(key) > self._max_key_bytes:
            raise CodecError("oversized_key", f"{len(key)} bytes > limit {self._max_key_bytes}")

    def refused_output(self, failed: Undelivered) -> OutputRecord | None:
        """The dead letter (``output_refused``) that stands for a prediction the broker refused
        for good, so that its input record still ends as one prediction or one dead letter.
        ``None`` for other outputs: an alert, a changelog record or a dead letter refused is
        reported and counted by the producer, not replaced."""
        if failed.topic != self._topics.predictions or failed.value is None:
            return None
        prediction = self._predictions.decode(failed.value)
        source = PlainRecord(
            self._topics.transactions,
            prediction["source_partition"],
            prediction["source_offset"],
            failed.key,
            failed.value,
        )
        return self.dead_letters.of(source, "output_refused", f"{failed.topic}: {failed.error}")
