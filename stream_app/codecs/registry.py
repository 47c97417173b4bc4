"""Where Avro schema ids come from: a Confluent Schema Registry, or files (``schemas/``, read
only, and a state directory for what is registered at run time)."""

from __future__ import annotations

import fcntl
import json
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from stream_app.errors import CodecError, ConfigError, SchemaRegistryUnavailable

Schema = dict[str, Any]


class SchemaRegistry(ABC):
    """Maps schema ids to Avro schemas (parsed JSON) and registers new ones under a subject."""

    @abstractmethod
    def schema(self, schema_id: int) -> Schema:
        """The schema with this id; ``CodecError('unknown_schema_id')`` if there is none."""

    @abstractmethod
    def register(self, subject: str, schema: Schema) -> int:
        """Register ``schema`` under ``subject`` (idempotent) and return its id."""


class FileSchemaRegistry(SchemaRegistry):
    """Schema ids without a Schema Registry server: those shipped in ``schemas/registry.json``
    (read only: the repository's tracked files never change at run time) and those registered
    since, kept in ``registry.json`` of a state directory beside their ``.avsc`` files.

    An unknown id triggers one re-read of the files (at most once a second), so a producer that
    registered a new version is understood without restarting the workers.
    """

    RELOAD_INTERVAL_S = 1.0

    def __init__(self, shipped: Path, state: Path) -> None:
        self._shipped = shipped
        self._state = state
        if not (shipped / "registry.json").is_file():
            raise ConfigError(f"schema registry file not found: {shipped / 'registry.json'}")
        self._lock = threading.Lock()
        self._schemas: dict[int, Schema] = {}
        self._subjects: dict[int, str] = {}
        self._loaded_at = 0.0
        self._load()

    def _load(self) -> None:
        """Read both directories; :class:`ConfigError` naming the file if one cannot be read
        (the schemas known before stay)."""
        schemas: dict[int, Schema] = {}
        subjects: dict[int, str] = {}
        for directory in (self._shipped, self._state):
            try:
                for entry in _entries(directory):
                    schema_id = int(entry["id"])
                    schemas[schema_id] = json.loads((directory / entry["file"]).read_text())
                    subjects[schema_id] = str(entry["subject"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ConfigError(
                    f"schema registry files in {directory} cannot be read: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        self._schemas, self._subjects = schemas, subjects
        self._loaded_at = time.monotonic()

    def schema(self, schema_id: int) -> Schema:
        found = self._schemas.get(schema_id)
        if found is None and time.monotonic() - self._loaded_at >= self.RELOAD_INTERVAL_S:
            with self._lock:
                try:
                    self._load()
                except ConfigError as exc:  # damaged files: as a registry down, retried later
                    self._loaded_at = time.monotonic()
                    raise SchemaRegistryUnavailable(str(exc)) from None
            found = self._schemas.get(schema_id)
        if found is None:
            raise CodecError("unknown_schema_id", f"schema id {schema_id} is not registered")
        return found

    def register(self, subject: str, schema: Schema) -> int:
        for schema_id, known in self._schemas.items():
            if known == schema and self._subjects[schema_id] == subject:
                return schema_id
        # a file lock: several processes (workers, sink, producer) may register at once
        self._state.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self._state / "registry.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._load()
            for schema_id, known in self._schemas.items():
                if known == schema and self._subjects[schema_id] == subject:
                    return schema_id
            schema_id = max(self._schemas, default=0) + 1
            file_name = f"{subject}-{schema_id}.avsc"
            (self._state / file_name).write_text(json.dumps(schema, indent=2) + "\n")
            entries = [
                *_entries(self._state),
                {"id": schema_id, "subject": subject, "file": file_name},
            ]
            index = self._state / "registry.json"
            staged = index.with_suffix(".json.tmp")
            staged.write_text(json.dumps({"schemas": entries}, indent=2) + "\n")
            staged.replace(index)  # readers never see a half-written index
            self._load()
            return schema_id


def _entries(directory: Path) -> list[dict[str, Any]]:
    """The entries of ``directory/registry.json`` (none if there is no such file)."""
    index = directory / "registry.json"
    if not index.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(index.read_text())["schemas"]
    return entries


class ConfluentSchemaRegistry(SchemaRegistry):
    """A Confluent-compatible Schema Registry server, through confluent-kafka's client.

    Only an answer that the id does not exist (404) makes a record undecodable; a registry that
    does not answer (refused connection, timeout, 5xx, after the client's own retries) raises
    :class:`SchemaRegistryUnavailable`, which the scoring loop retries.
    """

    def __init__(self, url: str, basic_auth: str | None = None) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        config: dict[str, str] = {"url": url}
        if basic_auth:
            config["basic.auth.user.info"] = basic_auth
        self._url = url
        self._client = SchemaRegistryClient(config)
        self._cache: dict[int, Schema] = {}

    def schema(self, schema_id: int) -> Schema:
        if schema_id not in self._cache:
            from confluent_kafka.schema_registry.error import SchemaRegistryError

            try:
                found = self._client.get_schema(schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    raise CodecError("unknown_schema_id", str(exc)) from None
                raise self._unavailable(exc) from exc
            except Exception as exc:  # no answer at all: refused connection, timeout, DNS
                raise self._unavailable(exc) from exc
            if (found.schema_type or "AVRO") != "AVRO":  # another team's JSON or Protobuf
                raise CodecError(
                    "incompatible_schema", f"schema {schema_id} is {found.schema_type}, not Avro"
                )
            try:
                self._cache[schema_id] = json.loads(found.schema_str or "{}")
            except json.JSONDecodeError as exc:
                raise CodecError(
                    "incompatible_schema", f"schema {schema_id} is not an Avro schema: {exc}"
                ) from None
        return self._cache[schema_id]

    def register(self, subject: str, schema: Schema) -> int:
        from confluent_kafka.schema_registry import Schema as RegistrySchema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return int(
                self._client.register_schema(subject, RegistrySchema(json.dumps(schema), "AVRO"))
            )
        except SchemaRegistryError as exc:
            if exc.http_status_code < 500 and exc.http_status_code not in (408, 429):
                # refused for what was asked: incompatible, invalid, not authorised
                raise ConfigError(f"Schema Registry {self._url} refused {subject}: {exc}") from None
            raise self._unavailable(exc) from exc
        except Exception as exc:  # no answer at all: refused connection, timeout, DNS
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> SchemaRegistryUnavailable:
        return SchemaRegistryUnavailable(
            f"Schema Registry {self._url}: {type(exc).__name__}: {exc}"
        )
