"""Fixtures of the unit suite: nothing running, everything in temporary directories.

chDB opens exactly one data directory per process ("EmbeddedServer already initialized with
path ..."), so the warehouse fixture is one session-scoped directory and each test gets a
database of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from models.registry import FileModelStore, ModelMetadata
from models.train import TrainingConfig, train_model
from stream_app.codecs.registry import FileSchemaRegistry
from stream_app.settings import CONFIG_FILE_ENV, Settings
from tests.unit.support import copy_schemas


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never read the developer's ``STREAM_APP_*`` variables or config file."""
    for name in list(os.environ):
        if name.startswith("STREAM_APP_") or name == CONFIG_FILE_ENV:
            monkeypatch.delenv(name)


@pytest.fixture
def schemas_dir(tmp_path: Path) -> Path:
    return copy_schemas(tmp_path / "schemas")


@pytest.fixture
def file_registry(schemas_dir: Path) -> FileSchemaRegistry:
    return FileSchemaRegistry(schemas_dir)


@pytest.fixture
def settings(schemas_dir: Path, tmp_path: Path) -> Settings:
    """Default settings over the private schema copy and a private model directory."""
    return Settings(schemas_dir=schemas_dir, model_dir=tmp_path / "models", worker_id="w-test")


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
def session_registry(session_schemas_dir: Path) -> FileSchemaRegistry:
    return FileSchemaRegistry(session_schemas_dir)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    """Set several environment variables for one test."""

    def set_all(values: dict[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_all
