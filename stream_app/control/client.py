"""The operator's side of the control topic: publish commands, find live workers, collect acks."""

from __future__ import annotations

import getpass
import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator

import msgspec
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    Message,
    Producer,
    TopicPartition,
)

from models.registry import ModelMetadata
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.control.commands import (
    ControlCodecs,
    ControlCommand,
    ControlError,
    ControlStatus,
)
from stream_app.errors import BrokerError
from stream_app.events import HEARTBEAT
from stream_app.kafka.config import consumer_config, producer_config
from stream_app.kafka.drain import read_all_to_end
from stream_app.kafka.probe import connect
from stream_app.settings import Settings

log = logging.getLogger(__name__)


def operator_name() -> str:
    """Who issues a command: ``user@host``."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _produce(settings: Settings, topic: str, *messages: tuple[bytes, bytes]) -> None:
    """Send ``(key, value)`` messages and wait until the broker acknowledged them all."""
    producer = Producer(producer_config(settings, **{"linger.ms": 0}))
    for key, value in messages:
        producer.produce(topic, value, key)
    if producer.flush(15):
        raise BrokerError(
            f"{topic}: the broker at {settings.bootstrap_servers} did not acknowledge"
        )


def publish_command(settings: Settings, command: ControlCommand) -> None:
    codecs = ControlCodecs(settings, schema_registry(settings))
    _produce(settings, settings.topics.control, (command.key(), codecs.encode_command(command)))


def publish_model_version(settings: Settings, metadata: ModelMetadata) -> None:
    """Send a version's metadata to the warehouse (``model_versions``) through the sink."""
    record = msgspec.structs.asdict(metadata)
    record["training_json"] = json.dumps(record.pop("training"), sort_keys=True)
    record["evaluation_json"] = json.dumps(record.pop("evaluation"), sort_keys=True)
    codec = topic_codec(settings, schema_registry(settings), "model_versions")
    message = (metadata.version.encode(), codec.encode(record))
    _produce(settings, settings.topics.model_versions, message)


def publish_retrain_run(settings: Settings, record: dict[str, object]) -> None:
    """Send a run of the retraining job to the warehouse (``retrain_runs``) through the sink."""
    codec = topic_codec(settings, schema_registry(settings), "retrain_runs")
    key = str(record["run_id"]).encode()
    _produce(settings, settings.topics.retrain_runs, (key, codec.encode(record)))


def publish_drift_events(settings: Settings, records: list[dict[str, object]]) -> None:
    """Send detections of a monitor outside the workers to ``drift_events`` through the sink."""
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    messages = ((str(r["model_version"]).encode(), codec.encode(r)) for r in records)
    _produce(settings, settings.topics.drift_events, *messages)


def publish_quality_estimates(settings: Settings, records: list[dict[str, object]]) -> None:
    """Send ``stream-app estimate``'s records to the warehouse (``quality_estimates``)."""
    codec = topic_codec(settings, schema_registry(settings), "quality_estimates")
    topic = settings.topics.quality_estimates
    _produce(
        settings, topic, *((str(r["model_version"]).encode(), codec.encode(r)) for r in records)
    )


class StatusReader:
    """Reads every partition of the status topic from its beginning to its real end, then follows.

    The topic is made with one partition, but one auto-created by a broker may have more: the
    reader takes whatever partitions the broker reports, so no worker's status is missed.
    """

    def __init__(self, settings: Settings, on_wait: Callable[[str], None] | None = None) -> None:
        """Waits ``broker_wait_s`` at most for a broker, telling ``on_wait`` what it waits for."""
        topic = settings.topics.control_status
        try:  # asked by a quiet admin client: a consumer logs every reconnect while none answers
            _, cluster = connect(settings, settings.broker_wait_s, on_wait)
        except BrokerError as exc:
            raise BrokerError(f"cannot read {topic}: {exc}") from None
        metadata = cluster.topics.get(topic)
        if metadata is None or metadata.error is not None:
            why = "no such topic" if metadata is None else metadata.error
            raise BrokerError(f"cannot read {topic} on {settings.bootstrap_servers}: {why}")
        self._codecs = ControlCodecs(settings, schema_registry(settings))
        self._consumer = Consumer(consumer_config(settings, f"status-reader-{uuid.uuid4().hex}"))
        self._starts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
        self._consumer.assign(self._starts)

    def read_to_end(self) -> Iterator[ControlStatus]:
        """From the beginning to the real end; ``follow`` then continues from there."""
        yield from self._decoded(read_all_to_end(self._consumer, self._starts))

    def follow(self, timeout_s: float) -> Iterator[ControlStatus]:
        """New records until a fetch comes back empty or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            records = [r for r in self._consumer.consume(1000, 0.2) if r.error() is None]
            if not records:
                return
            yield from self._decoded(records)

    def _decoded(self, records: Iterable[Message]) -> Iterator[ControlStatus]:
        """The statuses of ``records``; one that does not decode is logged and passed over
        (anyone who can write the topic must not stop promotions and `models list`)."""
        for record in records:
            try:
                yield self._codecs.decode_status(record.value())
            except ControlError as exc:
                log.warning(
                    "%s[%d]@%d passed over: %s",
                    record.topic(), record.partition(), record.offset(), exc,
                )  # fmt: skip

    def close(self) -> None:
        self._consumer.close()


def live_within_s(settings: Settings) -> float:
    """How recent a worker's latest status must be for it to count as live: three heartbeats
    missed, and a second."""
    return 3 * settings.heartbeat_interval_s + 1


def latest_statuses(reader: StatusReader) -> dict[str, ControlStatus]:
    """Each worker's latest status (heartbeat, acknowledgement or stop), by acknowledgement time:
    partitions of the status topic interleave when read."""
    last_seen: dict[str, ControlStatus] = {}
    for status in reader.read_to_end():
        previous = last_seen.get(status.worker_id)
        seen = (status.acknowledged_at, status.command)
        if previous is None or seen >= (previous.acknowledged_at, previous.command):
            last_seen[status.worker_id] = status
    return last_seen


def is_live(status: ControlStatus, within_s: float, now_ms: float) -> bool:
    """A worker whose latest status is recent and not the announcement of its stop. A status
    dated further ahead than ``within_s`` is not recent either: one forged for the year 9999
    made a worker that does not exist live for ever, and every promotion wait for it.

    >>> status = ControlStatus("", "heartbeat", None, "w", "alive", "", "1", None, 0.0, 10_000)
    >>> [is_live(status, 3.0, now_ms) for now_ms in (12_000, 14_000, 8_000, 6_000)]
    [True, False, True, False]
    """
    return status.command != "stopped" and abs(now_ms - status.acknowledged_at) <= within_s * 1000


def live_models(reader: StatusReader, within_s: float) -> dict[str, tuple[str, str | None]]:
    """The ``(champion, challenger)`` versions each live worker (:func:`is_live`) last
    reported."""
    now_ms = time.time() * 1000
    return {
        worker: (status.champion_version, status.challenger_version)
        for worker, status in latest_statuses(reader).items()
        if is_live(status, within_s, now_ms)
    }


def live_workers(reader: StatusReader, within_s: float) -> set[str]:
    """Workers whose latest heartbeat is recent and who have not announced their stop."""
    return set(live_models(reader, within_s))


def wait_for_acks(
    reader: StatusReader, command_id: str, workers: set[str], timeout_s: float
) -> dict[str, ControlStatus]:
    """Acknowledgements of ``command_id`` by each of ``workers`` (fewer on timeout)."""
    acks: dict[str, ControlStatus] = {}
    deadline = time.monotonic() + timeout_s
    while not workers <= set(acks) and time.monotonic() < deadline:
        for status in reader.follow(timeout_s=deadline - time.monotonic()):
            if status.command_id == command_id and status.command != HEARTBEAT:
                acks[status.worker_id] = status
        time.sleep(0.05)
    return acks
