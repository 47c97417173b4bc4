"""``stream-app retrainer``: drift detections start training runs by a policy, and a passing
candidate goes through shadow, promotion and watch (:mod:`stream_app.retraining.rollout`).

One consumer reads ``drift-events`` from the offsets its group committed (``assign()``: there is
one retrainer), one detection at a time. A detection the policy ignores, or that comes too soon,
is logged and passed over; one that starts a run waits until the sink stored it in
``drift_events``, then ``stream-app retrain --drift-event ID`` runs as a child process (its nice
value raised, LightGBM on one thread: never on the scoring path). A run that crashes, hangs past
``retrainer_run_timeout_s`` or answers nonsense is a ``failed`` row with the reason; the service
goes on. The detection's offset is committed once its decisions are recorded; on stop, a run in
flight is ended and its detection is read again at the next start. A detection read again
(after a stop or a crash) whose training run is recorded starts no second one: its rollout goes on
from the last step recorded (:func:`~stream_app.retraining.rollout.where_it_stands`), or nothing
is left to do. While the warehouse does not answer, the service waits for it
(:class:`~stream_app.retraining.patience.Patience`), not ready. It serves ``/health``,
``/healthz``, ``/readyz`` and ``/metrics`` (:mod:`stream_app.retraining.metrics`) on
``retrainer_web_port``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import mode
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from stream_app.codecs.avro import AvroRecordCodec
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.codecs.retry import retry_while_unavailable
from stream_app.errors import CodecError
from stream_app.health_web import HealthWeb
from stream_app.kafka.config import admin_config, consumer_config
from stream_app.kafka.probe import broker_unreachable
from stream_app.kafka.topics import check_topics
from stream_app.processes import settings_env
from stream_app.retraining.job import CHALLENGER_SET, Trigger, failed
from stream_app.retraining.metrics import RetrainerStats, retrainer_metrics
from stream_app.retraining.patience import Patience
from stream_app.retraining.policy import Policy
from stream_app.retraining.queries import (
    RetrainError,
    decisions_for,
    drift_event_condition,
    drift_event_id,
    drift_event_stored,
    since_last_window,
)
from stream_app.retraining.rollout import DONE, WATCH, follow, where_it_stands
from stream_app.settings import Settings
from stream_app.startup_web import build_answering
from stream_app.thread_service import ThreadService, execute, not_ready_reasons
from stream_app.warehouse.sql import unanswered

log = logging.getLogger(__name__)


def read_detection(codec: AvroRecordCodec, value: bytes | None) -> tuple[dict[str, Any], str]:
    """A drift-events record's detection and its id: ``CodecError`` when it does not decode,
    ``RetrainError`` when no run could name it (a partition of -1, an empty detector)."""
    detection = codec.decode(value or b"")
    event_id = drift_event_id(detection)
    drift_event_condition(event_id)
    return detection, event_id


class RetrainerLoop:
    """The retrainer's blocking loop (a :class:`~stream_app.thread_service.BlockingLoop`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = settings.topics.drift_events
        check_topics(settings, (self._topic, settings.topics.retrain_runs), broker_wait_s=None)
        self._codec = topic_codec(settings, schema_registry(settings), "drift_events")
        self._policy = Policy.from_settings(settings)
        self._consumer = Consumer(consumer_config(settings, settings.retrainer_group))
        self._stopping = threading.Event()
        self._child: subprocess.Popen[str] | None = None
        self.stats = RetrainerStats()
        self.patience = Patience(settings, self._stopping, self.stats)

    @property
    def decisions(self) -> list[str]:
        """The latest decisions taken, oldest first (runs and rollout steps)."""
        return list(self.stats.decisions)

    def run(self) -> None:
        self._consumer.assign(self._assignment())
        try:
            while not self._stopping.is_set():
                for message in self._consumer.consume(100, 0.5):
                    if not self._decide(message):
                        return
                    self._consumer.commit(
                        offsets=[TopicPartition(self._topic, message.partition() or 0,
                                                (message.offset() or 0) + 1)],
                        asynchronous=False,
                    )  # fmt: skip
        finally:
            self._consumer.close()

    def stop(self) -> None:
        self._stopping.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()

    def _assignment(self) -> list[TopicPartition]:
        metadata = self._consumer.list_topics(self._topic, timeout=10).topics[self._topic]
        partitions = [TopicPartition(self._topic, p) for p in metadata.partitions]
        committed = self._consumer.committed(partitions, timeout=10)
        return [
            TopicPartition(
                self._topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            )
            for tp in committed
        ]

    def _decide(self, message: Message) -> bool:
        """Decide on one detection; False when stopped before its decisions were recorded."""
        if message.error() is not None:
            log.warning("consume: %s", message.error())
            return True
        stats = self.stats
        stats.detections_read += 1
        try:
            read = retry_while_unavailable(
                lambda: read_detection(self._codec, message.value()), self._stopping, "a record"
            )
        except (CodecError, RetrainError) as exc:
            log.warning("drift-events@%s passed over: %s", message.offset(), exc)
            stats.skipped["undecodable"] += 1
            return True
        if read is None:  # stopped while the Schema Registry was silent
            return False
        detection, event_id = read
        why_not = self._policy.ignored(detection)
        if why_not is not None:
            return self._skip(event_id, why_not, "not_configured")
        recorded = self.patience.ask(lambda: decisions_for(self._settings, event_id))
        if recorded is None:
            return False
        stands, run = where_it_stands(recorded)
        if stands == DONE:
            return self._skip(event_id, "its decisions are recorded", "already_decided")
        if run is not None:  # its training run is recorded (a restart): no second one
            log.info(
                "detection %s: its run is recorded, its rollout goes on (%s)", event_id, stands
            )
            return self._roll_out(run, promoted=stands == WATCH)
        since = self.patience.ask(lambda: since_last_window(self._settings))
        if since is None:
            return False
        why_not = self._policy.not_yet(detection["event_time"], *since)
        if why_not is not None:
            return self._skip(event_id, why_not, "too_soon")
        stats.state = "training"
        try:
            return self._run(event_id)
        finally:
            stats.state = "idle"

    def _skip(self, event_id: str, why_not: str, kind: str) -> bool:
        """Pass over a detection that starts no run, counted by ``kind``."""
        log.info("detection %s starts no run: %s", event_id, why_not)
        self.stats.skipped[kind] += 1
        return True

    def _run(self, event_id: str) -> bool:
        """A training run for the detection ``event_id`` and, if it sets a challenger, its
        rollout; False when stopped before its decisions were recorded."""
        stats = self.stats
        run = self._train(Trigger("drift", event_id))
        if run is None:
            return False
        stats.record(run["trigger"], run["decision"])
        stats.run_seconds.observe(run["wall_seconds"])
        log.info("run for %s: %s (%s)", event_id, run["decision"], run["reason"])
        if run["decision"] != CHALLENGER_SET:
            return True
        return self._roll_out(run, promoted=False)

    def _roll_out(self, run: Mapping[str, Any], *, promoted: bool) -> bool:
        """The rollout of the challenger ``run`` set, from its watch when ``promoted``; False when
        stopped before its decisions were recorded."""
        stats = self.stats
        stats.state = "watch" if promoted else "shadow"
        try:
            for trigger, decision in follow(self._settings, run, self.patience, promoted=promoted):
                stats.record(trigger, decision)
                stats.state = "watch"  # after the shadow step, the only one left
        finally:
            stats.state = "idle"
        return not self._stopping.is_set()

    def _train(self, trigger: Trigger) -> dict[str, Any] | None:
        """The record of a training run in a child process, or of its failure; None when
        stopped."""
        settings, started = self._settings, time.perf_counter()
        deadline: float | None = None  # from the warehouse's first answer
        while not (stored := self.patience.ask(
            lambda: drift_event_stored(settings, trigger.drift_event)
        )):  # fmt: skip
            if stored is None:
                return None
            deadline = deadline or time.monotonic() + settings.retrainer_stored_timeout_s
            if time.monotonic() > deadline:
                reason = f"not in drift_events after {settings.retrainer_stored_timeout_s} s"
                return failed(settings, trigger, reason, started)
            if self._stopping.wait(1.0):
                return None
        command = [sys.executable, "-m", "stream_app", "retrain", "--json",
                   "--drift-event", trigger.drift_event]  # fmt: skip
        self._child = subprocess.Popen(  # noqa: S603  # our own interpreter and module
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **settings_env(settings)},
        )
        try:
            out, err = self._child.communicate(timeout=settings.retrainer_run_timeout_s)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.communicate()
            reason = f"still running after {settings.retrainer_run_timeout_s} s: killed"
            return failed(settings, trigger, reason, started)
        if self._stopping.is_set():
            return None
        code = self._child.returncode
        try:
            record: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
            if code in (0, 1) and {"decision", "reason"} <= set(record):
                return record
        except (IndexError, ValueError, TypeError):
            pass
        tail = " | ".join(line for line in err.strip().splitlines()[-3:])[-500:]
        return failed(settings, trigger, f"exit code {code}: {tail or 'no output'}", started)


def run_retrainer(settings: Settings) -> None:
    """Decide on drift detections until SIGTERM or SIGINT, serving ``/health``, ``/healthz``,
    ``/readyz`` and ``/metrics`` on ``retrainer_web_port``."""
    loop, listener = build_answering(
        settings,
        settings.retrainer_web_port,
        "checking the topics",
        lambda: RetrainerLoop(settings),
    )
    service = ThreadService(loop, "retrainer")
    admin = AdminClient(admin_config(settings))

    def ready() -> list[str]:
        timeout_s = settings.health_broker_timeout_s
        # the loop's own last question while it waits, else whether the endpoint answers
        warehouse = loop.patience.unavailable or unanswered(settings, timeout_s)
        problems = {"broker unreachable": broker_unreachable(admin, timeout_s),
                    "warehouse unavailable": warehouse}  # fmt: skip
        return not_ready_reasons("retrainer", service, problems)

    def health() -> dict[str, object]:
        stats = loop.stats
        return {"state": stats.state, "detections_read": stats.detections_read,
                "decisions": loop.decisions, "reasons": ready()}  # fmt: skip

    pages = HealthWeb(listener, health, retrainer_metrics(loop.stats), ready)
    execute(mode.Worker(service, pages, override_logging=False), service)
