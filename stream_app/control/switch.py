"""Apply control commands between two batches, with models loaded off the scoring thread.

A worker reads the control topic from the beginning to its end (the high watermark when it
starts) before it scores anything. Afterwards each new
command is prepared (loaded, checksum and feature set checked) in a background thread, in order,
and swapped in at the next batch boundary; every command is acknowledged on the status topic.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from models.loader import ModelLoader
from stream_app.control.commands import (
    ControlCodecs,
    ControlCommand,
    ControlError,
    ControlStatus,
)
from stream_app.control.modelset import ModelSet, prepare
from stream_app.control.signing import CommandVerifier
from stream_app.errors import ModelError, SchemaRegistryUnavailable
from stream_app.events import HEARTBEAT
from stream_app.kafka.drain import read_to_end

log = logging.getLogger(__name__)

#: the ``command`` column of acknowledgements that do not answer a decodable command
_NON_COMMAND_NAMES = {
    "alive": HEARTBEAT,
    "stopped": "stopped",
    "refused": "malformed",
    "fallback": "start",  # a model of the registry's aliases that could not be used at start
}

#: the longest refusal reason a reply carries (a loader's message may quote what it read)
MAX_REASON_CHARS = 1000

Prepared = tuple[ControlCommand | None, ModelSet | None, str]  # command, result, refusal reason


def prepare_command(
    value: bytes | None,
    base: ModelSet,
    codecs: ControlCodecs,
    verifier: CommandVerifier,
    loader: ModelLoader,
    now_ms: int | None,
) -> Prepared:
    """A control record's command and the model set it leads to from ``base``, or why it is
    refused: never raises, whatever the record holds (``now_ms`` None while replaying)."""
    try:
        command = codecs.decode_command(value)
    except ControlError as exc:
        return None, None, str(exc)
    except SchemaRegistryUnavailable as exc:  # a writer schema not known here yet: scoring goes
        # on, on the models it has; the command is refused, to be published again
        return None, None, f"not read, publish it again once the Schema Registry answers: {exc}"
    try:
        verifier.check(command, now_ms)
        return command, prepare(loader, base, command), ""
    except (ControlError, ModelError) as exc:
        return command, None, str(exc)
    except Exception as exc:  # a model file that breaks the loader must not stop scoring
        return command, None, f"{type(exc).__name__}: {exc}"


class ModelSwitch:
    """Owns the worker's current :class:`ModelSet` and the control topic consumer."""

    def __init__(
        self,
        consumer: Consumer,
        loader: ModelLoader,
        codecs: ControlCodecs,
        models: ModelSet,
        control_topic: str,
        status_topic: str,
        worker_id: str,
        heartbeat_interval_s: float,
        verifier: CommandVerifier,
        refused_at_start: tuple[str, ...] = (),
    ) -> None:
        self._consumer = consumer
        self._verifier = verifier
        self._refused_at_start = refused_at_start  # from initial_models, said in catch_up
        self._loader = loader
        self._codecs = codecs
        self.models = models
        self._control_topic = control_topic
        self._status_topic = status_topic
        self._worker_id = worker_id
        self._heartbeat_interval_s = heartbeat_interval_s
        self._last_heartbeat = 0.0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")
        self._pending: deque[Future[Prepared]] = deque()
        self._base = models  # what the next queued command is prepared on top of
        self.applied = 0
        self.refused = 0

    def catch_up(self, producer: Producer) -> None:
        """Replay the whole control topic before scoring starts. Commands applied again are not
        acknowledged again; one refused again (a model that does not load) is, and so is each
        registry model that could not be used at start (status ``fallback``): the status topic
        says which models this worker stays on instead."""
        replayed = 0
        refused: list[tuple[ControlCommand | None, str]] = []
        start = TopicPartition(self._control_topic, 0, OFFSET_BEGINNING)
        for record in read_to_end(self._consumer, start):
            command, models, reason = self._prepare(record.value(), self.models, replaying=True)
            replayed += 1
            if models is not None:
                self.models = models
            else:
                log.warning("replayed command refused again: %s", reason)
                refused.append((command, reason))
        self._base = self.models
        for reason in self._refused_at_start:
            self._acknowledge(producer, None, "fallback", reason, 0.0)
        for command, reason in refused:
            self._acknowledge(producer, command, "refused", f"replayed: {reason}", 0.0)
        producer.poll(0)
        log.info("control topic replayed (%d commands): models %s", replayed, self.models.versions)

    def between_batches(self, producer: Producer) -> bool:
        """Queue new commands, swap in those prepared, acknowledge; heartbeat when due.

        Returns whether the models changed.
        """
        for record in self._consumer.consume(100, 0):
            if record.error() is None:
                self._pending.append(self._executor.submit(self._prepare_next, record.value()))
        acknowledged = swapped = False
        while self._pending and self._pending[0].done():
            started = time.perf_counter()
            command, models, reason = self._pending.popleft().result()
            if models is not None:
                self.models = models
                swapped = True
                self.applied += 1
            else:
                self.refused += 1
            pause_ms = (time.perf_counter() - started) * 1000
            status = "applied" if models else "refused"
            self._acknowledge(producer, command, status, reason, pause_ms)
            acknowledged = True
        now = time.monotonic()
        if now - self._last_heartbeat >= self._heartbeat_interval_s:
            self._last_heartbeat = now
            self._acknowledge(producer, None, "alive", "", 0.0)
            acknowledged = True
        if acknowledged:
            producer.poll(0)
        return swapped

    def announce_stop(self, producer: Producer) -> None:
        self._acknowledge(producer, None, "stopped", "", 0.0)
        producer.flush(5)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._consumer.close()

    def _prepare_next(self, value: bytes | None) -> Prepared:
        """Runs in the loader thread, in arrival order, on top of the last accepted result."""
        prepared = self._prepare(value, self._base)
        if prepared[1] is not None:
            self._base = prepared[1]
        return prepared

    def _prepare(self, value: bytes | None, base: ModelSet, replaying: bool = False) -> Prepared:
        now_ms = None if replaying else int(time.time() * 1000)
        return prepare_command(value, base, self._codecs, self._verifier, self._loader, now_ms)

    def _acknowledge(
        self,
        producer: Producer,
        command: ControlCommand | None,
        status: str,
        reason: str,
        pause_ms: float,
    ) -> None:
        champion, challenger = self.models.versions
        ack = ControlStatus(
            command_id=command.command_id if command else "",
            command=command.command if command else _NON_COMMAND_NAMES[status],
            version=command.version if command else None,
            worker_id=self._worker_id,
            status=status,
            reason=reason[:MAX_REASON_CHARS],
            champion_version=champion,
            challenger_version=challenger,
            pause_ms=pause_ms,
            acknowledged_at=int(time.time() * 1000),
        )
        if command is not None:
            log.info(
                "command %s %s %s: %s %s", ack.command_id, ack.command, ack.version, status, reason
            )
        try:
            producer.produce(
                self._status_topic, self._codecs.encode_status(ack), self._worker_id.encode()
            )
        except (BufferError, KafkaException) as exc:  # a reply never stops scoring
            log.error("status %r of command %r not sent: %s", status, ack.command_id, exc)
