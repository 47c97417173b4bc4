"""Model switching, deterministically: which batch scores on which version, and what each
worker says about every command (issue 13).

The switch runs as the scoring loop drives it: ``between_batches`` at each batch boundary, then
the batch scored with ``switch.models``. The control consumer and the producer of
acknowledgements are in-memory fakes; the models are real ones in a private registry, loaded by
the worker's own :class:`ModelLoader` (proven in a child process, checksums checked).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from models.loader import ModelLoader
from models.registry import CHAMPION, FileModelStore, ModelDigests, ModelMetadata
from models.runtime import LightGBMRuntime
from stream_app.codecs.factory import schema_registry
from stream_app.control.commands import (
    CommandKind,
    ControlCodecs,
    ControlCommand,
    ControlStatus,
)
from stream_app.control.modelset import ModelSet
from stream_app.control.signing import CommandVerifier
from stream_app.control.switch import ModelSwitch, prepare_command
from stream_app.devtools.generator import TransactionGenerator
from stream_app.errors import SchemaRegistryUnavailable
from stream_app.events import HEARTBEAT
from stream_app.settings import Settings
from tests.unit.conftest import PipelineKit

STATUS_TOPIC = "control-status"


@dataclass
class FakeMessage:
    _value: bytes

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None


@dataclass
class FakeControlConsumer:
    """The control topic: what the test publishes is consumed at the next boundary."""

    queued: list[FakeMessage] = field(default_factory=list)

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        taken, self.queued = self.queued[:num_messages], self.queued[num_messages:]
        return taken

    def close(self) -> None:
        pass


@dataclass
class FakeProducer:
    sent: list[tuple[str, bytes, bytes]] = field(default_factory=list)

    def produce(self, topic: str, value: bytes, key: bytes) -> None:
        self.sent.append((topic, value, key))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


class GatedLoader(ModelLoader):
    """The worker's loader, held until the test opens the gate: a command is then still being
    prepared for as long as the test wants."""

    def __init__(self, store: FileModelStore) -> None:
        super().__init__(store)
        self.gate = threading.Event()
        self.gate.set()

    def load(
        self, alias_or_version: str = CHAMPION, expected: ModelDigests | None = None
    ) -> LightGBMRuntime:
        assert self.gate.wait(30), "the test never opened the gate"
        return super().load(alias_or_version, expected)


@dataclass
class Worker:
    switch: ModelSwitch
    loader: GatedLoader
    store: FileModelStore
    control: FakeControlConsumer
    producer: FakeProducer
    codecs: ControlCodecs

    def publish(self, kind: CommandKind, version: str | None) -> ControlCommand:
        command = ControlCommand.new(kind, version, "pytest")
        self.control.queued.append(FakeMessage(self.codecs.encode_command(command)))
        return command

    def boundary_until_swapped(self, timeout_s: float = 30) -> None:
        """Batch boundaries with no batch between them (an idle loop) until the models change."""
        deadline = time.monotonic() + timeout_s
        while not self.switch.between_batches(self.producer):
            assert time.monotonic() < deadline, "no swap"
            time.sleep(0.01)

    def boundaries_until_acknowledged(self, count: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.acks()) < count:
            assert time.monotonic() < deadline, f"{len(self.acks())} of {count} acks"
            self.switch.between_batches(self.producer)
            time.sleep(0.01)

    def acks(self) -> list[ControlStatus]:
        statuses = [self.codecs.decode_status(value) for _, value, _ in self.producer.sent]
        return [s for s in statuses if s.command != HEARTBEAT]


@pytest.fixture
def worker(
    settings: Settings, trained_store: tuple[FileModelStore, ModelMetadata], tmp_path: Path
) -> Iterator[Worker]:
    """Versions 1 (champion) and 2 score alike but are distinct versions; 3 is tampered with."""
    source, trained = trained_store
    text = source.load_text(trained.version)
    store = FileModelStore(tmp_path / "registry")
    meta = dict(feature_set_version=trained.feature_set_version,
                feature_names=trained.feature_names, threshold=trained.threshold,
                training={}, evaluation={})  # fmt: skip
    for _ in range(3):
        store.register(text, **meta)
    store.set_alias(CHAMPION, "1", by="pytest")
    (tmp_path / "registry" / "3" / "model.txt").write_text(text.replace("tree", "tree ", 1))
    loader = GatedLoader(store)
    codecs = ControlCodecs(settings, schema_registry(settings))
    control, producer = FakeControlConsumer(), FakeProducer()
    switch = ModelSwitch(
        consumer=control,
        loader=loader,
        codecs=codecs,
        models=ModelSet(loader.load("1")),
        control_topic="model-control",
        status_topic=STATUS_TOPIC,
        worker_id="w-test",
        heartbeat_interval_s=3600,
        verifier=CommandVerifier.from_settings(settings),
    )
    yield Worker(switch, loader, store, control, producer, codecs)
    switch.announce_stop(producer)


def scored_versions(kit: PipelineKit, worker: Worker, seed: int) -> set[str]:
    """Score one batch as the loop does (with the switch's models now); the versions it used."""
    events = [g.event for g, _ in zip(TransactionGenerator(seed=seed), range(50), strict=False)]
    result = kit.pipeline().process(kit.records(events), worker.switch.models)
    predictions = [o for o in result.outputs if o.topic == kit.settings.topics.predictions]
    assert len(predictions) == len(events)
    return {kit.predictions.decode(o.value)["model_version"] for o in predictions}


def test_a_command_during_batch_n_leaves_n_on_the_old_version_and_n_plus_1_on_the_new(
    worker: Worker, pipeline_kit: PipelineKit
) -> None:
    worker.switch.between_batches(worker.producer)
    worker.loader.gate.clear()
    worker.publish(CommandKind.PROMOTE, "2")
    assert not worker.switch.between_batches(worker.producer)  # consumed, being prepared
    assert scored_versions(pipeline_kit, worker, seed=1) == {"1"}  # batch N
    worker.loader.gate.set()  # the preparation ends during batch N
    worker.boundary_until_swapped()
    assert scored_versions(pipeline_kit, worker, seed=2) == {"2"}  # batch N + 1
    [ack] = worker.acks()
    assert (ack.status, ack.champion_version, ack.reason) == ("applied", "2", "")


def test_a_refused_command_then_a_valid_one(worker: Worker, pipeline_kit: PipelineKit) -> None:
    refused = worker.publish(CommandKind.PROMOTE, "3")  # tampered with
    applied = worker.publish(CommandKind.SET_CHALLENGER, "2")
    worker.boundaries_until_acknowledged(2)
    first, second = worker.acks()
    assert (first.command_id, first.status, first.champion_version) == (
        refused.command_id, "refused", "1"
    )  # fmt: skip
    assert "checksum mismatch" in first.reason
    assert (second.command_id, second.status) == (applied.command_id, "applied")
    assert (second.champion_version, second.challenger_version) == ("1", "2")
    assert worker.switch.models.versions == ("1", "2")
    assert scored_versions(pipeline_kit, worker, seed=3) == {"1"}  # the champion decides


def test_reload_with_a_tampered_champion_is_refused_and_keeps_the_loaded_model(
    worker: Worker, pipeline_kit: PipelineKit, tmp_path: Path
) -> None:
    model_file = tmp_path / "registry" / "1" / "model.txt"
    model_file.write_text(model_file.read_text().replace("tree", "tree ", 1))
    reload = worker.publish(CommandKind.RELOAD, None)
    worker.boundaries_until_acknowledged(1)
    [ack] = worker.acks()
    assert (ack.command_id, ack.command, ack.status) == (reload.command_id, "reload", "refused")
    assert "model 1: checksum mismatch" in ack.reason
    assert worker.switch.models.versions == ("1", None)
    assert scored_versions(pipeline_kit, worker, seed=4) == {"1"}


def test_rollback_without_a_version_is_refused(worker: Worker) -> None:
    before = worker.switch.models
    worker.publish(CommandKind.ROLLBACK, None)
    worker.boundaries_until_acknowledged(1)
    [ack] = worker.acks()
    assert (ack.command, ack.status, ack.reason) == (
        "rollback",
        "refused",
        "rollback needs a version",
    )
    assert worker.switch.models is before


def test_a_command_with_an_oversized_field_is_refused_in_a_reply_that_fits(
    worker: Worker,
) -> None:
    """A 500 KB ``command`` (the control topic takes 1 MB records): a reply echoing it twice
    was larger than the producer takes, and its ``KafkaException`` ended the scoring loop at
    every start (the control topic is replayed)."""
    hostile = ControlCommand("c-big", "x" * 500_000, None, "attacker", int(time.time() * 1000))
    worker.control.queued.append(FakeMessage(worker.codecs.encode_command(hostile)))
    worker.boundaries_until_acknowledged(1)
    [ack] = worker.acks()
    assert (ack.command, ack.status) == ("malformed", "refused")
    assert "length <= 128" in ack.reason and len(worker.producer.sent[-1][1]) < 1000
    assert worker.switch.models.versions == ("1", None)


class RefusingProducer(FakeProducer):
    """A producer whose queue is full, or that refuses what it is given."""

    def produce(self, topic: str, value: bytes, key: bytes) -> None:
        raise BufferError("Local: Queue full")


def test_a_reply_the_producer_refuses_is_logged_and_the_command_still_applied(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    worker.publish(CommandKind.PROMOTE, "2")
    worker.producer = RefusingProducer()
    worker.boundary_until_swapped()
    assert worker.switch.models.versions == ("2", None)
    assert "status 'applied' of command" in caplog.text and "Queue full" in caplog.text


class SilentRegistryCodecs:
    """Control codecs whose Schema Registry does not answer for a writer schema they lack."""

    def decode_command(self, value: bytes | None) -> ControlCommand:
        raise SchemaRegistryUnavailable("Schema Registry http://registry: 503")


def test_a_command_whose_schema_the_registry_cannot_give_now_is_refused_not_raised(
    worker: Worker,
) -> None:
    """It ended the scoring loop (and the worker at every start while the registry was down)."""
    before = worker.switch.models
    command, models, reason = prepare_command(
        b"\x00\x00\x00\x03\xe7",
        before,
        SilentRegistryCodecs(),
        None,
        None,
        None,  # type: ignore[arg-type]
    )
    assert (command, models) == (None, None)
    assert reason.startswith("not read, publish it again once the Schema Registry answers")


def status(worker_id: str, state: str) -> ControlStatus:
    return ControlStatus("c1", "promote", "2", worker_id, state, "", "2", None, 0.0, 0)
