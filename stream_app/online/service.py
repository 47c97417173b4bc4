"""``stream-app learner``: the online learner's process.

One consumer reads every partition of ``scored-features`` (the workers' feature tap) and of
``labels`` from the offsets of its checkpoint (``assign()``, no group: there is one learner).
Each feature record is scored and its shadow predictions produced to ``online-predictions``
(the predictions' schema, the learner's model version); each label is learnt from
(:mod:`stream_app.online.learner`). Every ``online_checkpoint_interval_s`` and on stop, in this
order: the producer is flushed (every shadow prediction acknowledged), then the state is saved
with its offsets; a flush that does not finish within ``FLUSH_S`` (the broker away), or a
state that cannot be written (a full disk), leaves the previous checkpoint in place, to be tried
again at the next interval, and ``/health`` reports a checkpoint overdue, with the cause. A
prediction the broker refuses, or a fatal producer error, stops the learner before the next
checkpoint, so a restart replays from the last one. A record that cannot be decoded is logged and
skipped.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import mode
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from models.online import OnlineModel
from stream_app.codecs.avro import AvroRecordCodec
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.codecs.retry import retry_while_unavailable
from stream_app.errors import BrokerError, CodecError
from stream_app.features import FEATURE_NAMES
from stream_app.health_web import HealthWeb
from stream_app.kafka.config import admin_config, consumer_config, producer_config
from stream_app.kafka.probe import broker_unreachable
from stream_app.kafka.producer_calls import serve
from stream_app.kafka.topics import check_topics
from stream_app.online.checkpoint import load_state, save_state
from stream_app.online.learner import LearnerState
from stream_app.online.metrics import learner_metrics
from stream_app.settings import Settings
from stream_app.startup_web import build_answering
from stream_app.thread_service import ThreadService, execute, not_ready_reasons

log = logging.getLogger(__name__)

BATCH = 1000
POLL_S = 0.2
#: how long a checkpoint waits for its shadow predictions' acknowledgements
FLUSH_S = 10.0


class OnlineLearnerLoop:
    """The learner's blocking loop (a :class:`~stream_app.thread_service.BlockingLoop`)."""

    def __init__(self, settings: Settings) -> None:
        topics = settings.topics
        self._settings = settings
        self._features_topic, self._labels_topic = topics.scored_features, topics.labels
        self._predictions_topic = topics.online_predictions
        needed = (self._features_topic, self._labels_topic, self._predictions_topic)
        check_topics(settings, needed, broker_wait_s=None)
        registry = schema_registry(settings)
        self._features: AvroRecordCodec = topic_codec(settings, registry, "scored_features")
        self._labels: AvroRecordCodec = topic_codec(settings, registry, "labels")
        self._predictions: AvroRecordCodec = topic_codec(settings, registry, "online_predictions")
        restored = load_state(settings.online_state_dir)
        if restored is not None and restored.model.kind != settings.online_model:
            log.warning("checkpoint holds a %s model, not %s: starting afresh",
                        restored.model.kind, settings.online_model)  # fmt: skip
            restored = None
        self.state = restored or LearnerState(
            OnlineModel(settings.online_model, FEATURE_NAMES), settings.online_buffer_events
        )
        self._consumer = Consumer(consumer_config(settings, f"learner-{uuid.uuid4().hex}"))
        self._producer = Producer(producer_config(settings))
        self._failed: list[KafkaError] = []
        self._stopping = threading.Event()
        #: ``time.monotonic()`` of the last checkpoint written, or of the start
        self.checkpointed_at = time.monotonic()
        #: why the last checkpoint was not written; None once one is
        self._skipped: str | None = None

    def run(self) -> None:
        self._consumer.assign(self._assignment())
        interval_s = self._settings.online_checkpoint_interval_s
        last_try = time.monotonic()
        try:
            while not self._stopping.is_set():
                for message in self._consumer.consume(BATCH, POLL_S):
                    if not self._handle(message):
                        break  # stopped while the Schema Registry was silent
                serve(self._producer.poll, 0)
                if time.monotonic() - last_try >= interval_s:
                    self.checkpoint()
                    last_try = time.monotonic()
            self.checkpoint()
        finally:
            self._consumer.close()
            # what the last flush left unacknowledged is not in any checkpoint (a restart
            # replays it): dropped, so that closing does not wait out librdkafka's delivery
            # timeout, and its threads stop reconnecting to a broker that is away
            self._producer.purge()
            self._producer.close()

    def stop(self) -> None:
        self._stopping.set()

    def checkpoint(self) -> None:
        """Producer flushed, then the state saved with its offsets; nothing saved when the flush
        did not finish within ``FLUSH_S`` or the write failed (the next interval tries again)."""
        unacknowledged = serve(self._producer.flush, FLUSH_S)
        if self._failed:
            raise BrokerError(f"shadow predictions refused: {self._failed[0]}: not checkpointed")
        if unacknowledged:
            self._skipped = (
                f"{unacknowledged} shadow predictions not acknowledged within {FLUSH_S:.0f} s"
            )
        else:
            try:
                save_state(self.state, self._settings.online_state_dir)
            except OSError as exc:  # a full or read-only disk: the previous checkpoint stays
                self._skipped = f"cannot write it: {exc}"
            else:
                self.checkpointed_at, self._skipped = time.monotonic(), None
                log.info("online learner checkpoint: %s", self.state.stats.as_dict())
                return
        log.warning("online learner checkpoint skipped: %s", self._skipped)

    def checkpoint_overdue(self) -> str | None:
        """A reason when no checkpoint was written for two intervals and a flush's wait."""
        age_s = time.monotonic() - self.checkpointed_at
        limit_s = 2 * self._settings.online_checkpoint_interval_s + FLUSH_S
        if age_s <= limit_s:
            return None
        cause = f" (the last attempt: {self._skipped})" if self._skipped else ""
        return f"none written for {age_s:.0f} s{cause}"

    def _assignment(self) -> list[TopicPartition]:
        assignment = []
        for topic in (self._features_topic, self._labels_topic):
            metadata = self._consumer.list_topics(topic, timeout=10).topics[topic]
            for partition in metadata.partitions:
                offset = self.state.offsets.get((topic, partition), OFFSET_BEGINNING)
                assignment.append(TopicPartition(topic, partition, offset))
        return assignment

    def _handle(self, message: Message) -> bool:
        """Learn from and score one record; False if stopped before it could be read (the
        Schema Registry silent): its offset is not noted."""
        if message.error() is not None:
            log.warning("consume: %s", message.error())
            return True
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None
        codec = self._features if topic == self._features_topic else self._labels
        try:
            value = retry_while_unavailable(
                lambda: codec.decode(message.value() or b""), self._stopping, "a record"
            )
        except CodecError as exc:
            log.warning("%s[%d]@%d skipped: %s", topic, partition, offset, exc)
        else:
            if value is None:
                return False
            if topic == self._features_topic:
                self._score(value, message.timestamp()[1])
            else:
                self.state.on_label(value["event_id"], value["is_fraud"])
        self.state.offsets[(topic, partition)] = offset + 1
        return True

    def _score(self, value: dict[str, Any], produced_ms: int) -> None:
        shadow = self.state.on_features(value, self._settings.online_threshold)
        if shadow is None:
            log.warning("scored-features record skipped: not the model's features, or malformed")
            return
        encoded = self._predictions.encode_columns(
            {
                "event_id": value["event_id"],
                "card_id": value["card_id"],
                "event_time": value["event_time"],
                "score": shadow.scores.tolist(),
                "decision": ["decline" if d else "approve" for d in shadow.decline],
                "source_offset": value["input_offset"],
            },
            constants={
                "input_create_time": produced_ms,
                "scored_time": int(time.time() * 1000),
                "model_version": self.state.model.version,
                "worker_id": self._settings.worker_id,
                "source_partition": value["input_partition"],
                "challenger_version": None,
                "challenger_score": None,
            },
        )
        for card, record in zip(value["card_id"], encoded, strict=True):
            while True:
                try:
                    self._producer.produce(
                        self._predictions_topic, record, card.encode(), on_delivery=self._delivered
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    serve(self._producer.poll, 0.05)

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._failed.append(error)


def run_learner(settings: Settings) -> None:
    """Learn and score in shadow until SIGTERM or SIGINT (which checkpoint first), serving
    ``/health``, ``/healthz``, ``/readyz`` and ``/metrics`` on ``online_web_port``."""
    loop, listener = build_answering(
        settings,
        settings.online_web_port,
        "checking the topics and reading the checkpoint",
        lambda: OnlineLearnerLoop(settings),
    )
    service = ThreadService(loop, "online-learner")
    admin = AdminClient(admin_config(settings))

    def ready() -> list[str]:
        broker = broker_unreachable(admin, settings.health_broker_timeout_s)
        problems = {"broker unreachable": broker, "checkpoint overdue": loop.checkpoint_overdue()}
        return not_ready_reasons("learner", service, problems)

    def health() -> dict[str, object]:
        return {**loop.state.stats.as_dict(), "reasons": ready()}

    pages = HealthWeb(listener, health, learner_metrics(loop.state), ready)
    execute(mode.Worker(service, pages, override_logging=False), service)
