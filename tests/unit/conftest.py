"""Fixtures of the unit suite: nothing running, everything in temporary directories.

chDB opens exactly one data directory per process ("EmbeddedServer already initialized with
path ..."), so the warehouse fixture is one session-scoped directory and each test gets a
database of its own.

The scoring pipeline's test modules share :class:`FakeRecord`, :class:`PipelineKit` (imported
from here, as the integration suite imports its helpers) and the ``feature_spy`` fixture.
"""

from __future__ import annotations

import os
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

import stream_app.scoring.pipeline
from models.loader import load_model
from models.registry import FileModelStore, ModelMetadata
from models.runtime import LightGBMRuntime
from models.train import TrainingConfig, train_model
from stream_app.alerts import RuleSet
from stream_app.codecs.avro import AvroCodec, AvroRecordCodec
from stream_app.codecs.detect import TransactionDecoder
from stream_app.codecs.factory import (
    avro_transactions,
    schema_registry,
    topic_codec,
    transaction_decoder,
)
from stream_app.codecs.json import JsonCodec
from stream_app.codecs.registry import FileSchemaRegistry
from stream_app.event_checks import EventChecks
from stream_app.events import FloatArray, Transaction, TransactionBatch
from stream_app.features import compute_features
from stream_app.kafka.records import InputRecord
from stream_app.scoring.alerting import AlertBuilder
from stream_app.scoring.dead_letters import DeadLetters
from stream_app.scoring.pipeline import ScoringPipeline
from stream_app.settings import CONFIG_FILE_ENV, Settings
from stream_app.state import CardStore
from stream_app.timing import now_ms
from tests.unit.support import copy_schemas

INPUT_TOPIC = "transactions"
WORKER_ID = "w-test"


def _clear_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("STREAM_APP_") or name == CONFIG_FILE_ENV:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never read the developer's ``STREAM_APP_*`` variables or config file."""
    _clear_environment(monkeypatch)


@pytest.fixture
def schemas_dir(tmp_path: Path) -> Path:
    return copy_schemas(tmp_path / "schemas")


@pytest.fixture
def schema_registry_dir(tmp_path: Path) -> Path:
    """Where the file registry keeps the schema ids registered during one test."""
    return tmp_path / "schema-registry"


@pytest.fixture
def file_registry(schemas_dir: Path, schema_registry_dir: Path) -> FileSchemaRegistry:
    return FileSchemaRegistry(schemas_dir, schema_registry_dir)


@pytest.fixture
def settings(schemas_dir: Path, schema_registry_dir: Path, tmp_path: Path) -> Settings:
    """Default settings over the private schema copy, a private registry and model directory."""
    return Settings(
        schemas_dir=schemas_dir,
        schema_registry_dir=schema_registry_dir,
        model_dir=tmp_path / "models",
        worker_id="w-test",
    )


@pytest.fixture(scope="session")
def chdb_client(chdb_directory: Path) -> Client:
    """The session's embedded warehouse (see tests/conftest.py), opened lazily."""
    return clickhouse_connect.get_client(dsn=f"chdb://{chdb_directory}")


@pytest.fixture
def database(chdb_client: Client) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"unit_{uuid.uuid4().hex[:12]}"
    chdb_client.command(f"CREATE DATABASE {name}")
    yield name
    chdb_client.command(f"DROP DATABASE IF EXISTS {name}")


TINY_TRAINING = TrainingConfig(events=5000, num_trees=20)


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[FileModelStore, ModelMetadata]:
    """A model store with one small model trained on synthetic data, made champion."""
    store = FileModelStore(tmp_path_factory.mktemp("models"))
    return store, train_model(store, TINY_TRAINING)


@pytest.fixture(scope="session")
def session_schemas_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A schema copy shared by tests that register nothing new (hypothesis wants no per-test
    fixtures)."""
    return copy_schemas(tmp_path_factory.mktemp("schemas"))


@pytest.fixture(scope="session")
def session_registry(
    tmp_path_factory: pytest.TempPathFactory, session_schemas_dir: Path
) -> FileSchemaRegistry:
    return FileSchemaRegistry(session_schemas_dir, tmp_path_factory.mktemp("schema-registry"))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    """Set several environment variables for one test."""

    def set_all(values: dict[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_all


# --- the scoring pipeline, without Kafka -----------------------------------------------------


@dataclass(frozen=True)
class FakeRecord:
    """A consumed record as the pipeline sees it (the InputRecord protocol, nothing more)."""

    _value: bytes | None
    _key: bytes | None
    _partition: int
    _offset: int
    _create_time: int = field(default_factory=now_ms)
    _topic: str = INPUT_TOPIC

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._create_time)


def partition_of(card_id: str, partitions: int = 4) -> int:
    """The input partition of a card's events (the producers key by card id)."""
    return zlib.crc32(card_id.encode()) % partitions


def checkpoint(store: CardStore) -> list[tuple[int, bytes, bytes]]:
    """``(partition, key, value)`` of the changelog records a checkpoint of the scoring loop
    writes: the cards changed since the last one, per partition (partition p of the changelog
    topic holds the state of input partition p)."""
    store.cut()
    return store.take_cut()


@dataclass(frozen=True)
class PipelineKit:
    """Codecs, the champion and settings to build scoring pipelines from."""

    settings: Settings
    champion: LightGBMRuntime
    decoder: TransactionDecoder
    predictions: AvroRecordCodec
    dead_letters: AvroRecordCodec
    alerts: AvroRecordCodec
    json: JsonCodec
    avro: AvroCodec

    def pipeline(
        self,
        rules: RuleSet | None = None,
        cooldown_ms: int | None = None,
        store: CardStore | None = None,
    ) -> ScoringPipeline:
        """A new pipeline: empty card state unless ``store`` is given, the default rules and the
        settings' cool-down unless told otherwise."""
        if cooldown_ms is None:
            cooldown_ms = int(self.settings.alert_cooldown_s * 1000)
        alerts = AlertBuilder(self.alerts, rules or RuleSet.default(), cooldown_ms, WORKER_ID)
        return ScoringPipeline(
            decoder=self.decoder,
            checks=EventChecks.from_settings(self.settings),
            predictions=self.predictions,
            dead_letters=DeadLetters.for_settings(self.dead_letters, self.settings, WORKER_ID),
            topics=self.settings.topics,
            worker_id=WORKER_ID,
            max_key_bytes=self.settings.max_key_bytes,
            store=store or CardStore(),
            alerts=alerts,
        )

    def records(
        self, events: list[Transaction], offsets: dict[int, int] | None = None
    ) -> list[InputRecord]:
        """Valid input records of ``events`` in this order, each in its card's partition, JSON
        and Avro alternating; ``offsets`` (partition → next offset) is advanced."""
        offsets = {} if offsets is None else offsets
        records: list[InputRecord] = []
        for i, event in enumerate(events):
            partition = partition_of(event.card_id)
            offset = offsets.get(partition, 0)
            offsets[partition] = offset + 1
            codec = self.avro if i % 2 else self.json
            records.append(
                FakeRecord(
                    codec.encode(event), event.card_id.encode(), partition, offset, event.event_time
                )
            )
        return records


@pytest.fixture(scope="session")
def pipeline_kit(
    tmp_path_factory: pytest.TempPathFactory, trained_store: tuple[FileModelStore, ModelMetadata]
) -> PipelineKit:
    with pytest.MonkeyPatch.context() as monkeypatch:  # session-scoped: clear the env here too
        _clear_environment(monkeypatch)
        settings = Settings(
            schemas_dir=copy_schemas(tmp_path_factory.mktemp("schemas")),
            schema_registry_dir=tmp_path_factory.mktemp("schema-registry"),
            worker_id=WORKER_ID,
        )
    registry = schema_registry(settings)
    return PipelineKit(
        settings=settings,
        champion=load_model(trained_store[0]),
        decoder=transaction_decoder(settings, registry),
        predictions=topic_codec(settings, registry, "predictions"),
        dead_letters=topic_codec(settings, registry, "dead_letters"),
        alerts=topic_codec(settings, registry, "alerts"),
        json=JsonCodec(),
        avro=avro_transactions(settings, registry),
    )


@pytest.fixture
def feature_spy(monkeypatch: pytest.MonkeyPatch) -> list[FloatArray]:
    """Every feature matrix the scoring pipeline computes, in order: a spy on the pure
    ``compute_features`` as the pipeline module calls it."""
    seen: list[FloatArray] = []

    def recording(batch: TransactionBatch, velocity: FloatArray) -> FloatArray:
        matrix = compute_features(batch, velocity)
        seen.append(matrix.copy())
        return matrix

    monkeypatch.setattr(stream_app.scoring.pipeline, "compute_features", recording)
    return seen
