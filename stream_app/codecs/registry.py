"""Where Avro schema ids come from: a Confluent Schema Registry, or a file in ``schemas/``."""

from __future__ import annotations

import fcntl
import json
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from stream_app.errors import CodecError, ConfigError

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
    """Schema ids kept in ``registry.json`` beside the ``.avsc`` files.

    An unknown id triggers one re-read of the file (at most once a second), so a producer that
    registered a new version is understood without restarting the workers.
    """

    RELOAD_INTERVAL_S = 1.0

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._index = directory / "registry.json"
        if not self._index.is_file():
            raise ConfigError(f"schema registry file not found: {self._index}")
        self._lock = threading.Lock()
        self._schemas: dict[int, Schema] = {}
        self._subjects: dict[int, str] = {}
        self._loaded_at = 0.0
        self._load()

    def _load(self) -> None:
        document = json.loads(self._index.read_text())
        schemas: dict[int, Schema] = {}
        subjects: dict[int, str] = {}
        for entry in document["schemas"]:
            schemas[int(entry["id"])] = json.loads((self._directory / entry["file"]).read_text())
            subjects[int(entry["id"])] = entry["subject"]
        self._schemas, self._subjects = schemas, subjects
        self._loaded_at = time.monotonic()

    def schema(self, schema_id: int) -> Schema:
        found = self._schemas.get(schema_id)
        if found is None and time.monotonic() - self._loaded_at >= self.RELOAD_INTERVAL_S:
            with self._lock:
                self._load()
            found = self._schemas.get(schema_id)
        if found is None:
            raise CodecError("unknown_schema_id", f"schema id {schema_id} is not registered")
        return found

    def register(self, subject: str, schema: Schema) -> int:
        # a file lock: several processes (workers, sink, producer) may register at once
        with self._lock, open(self._index, "rb+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._load()
            for schema_id, known in self._schemas.items():
                if known == schema and self._subjects[schema_id] == subject:
                    return schema_id
            schema_id = max(self._schemas, default=0) + 1
            file_name = f"{subject}-{schema_id}.avsc"
            (self._directory / file_name).write_text(json.dumps(schema, indent=2) + "\n")
            document = json.loads(self._index.read_text())
            document["schemas"].append({"id": schema_id, "subject": subject, "file": file_name})
            self._index.write_text(json.dumps(document, indent=2) + "\n")
            self._load()
            return schema_id


class ConfluentSchemaRegistry(SchemaRegistry):
    """A Confluent-compatible Schema Registry server, through confluent-kafka's client."""

    def __init__(self, url: str, basic_auth: str | None = None) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        config: dict[str, str] = {"url": url}
        if basic_auth:
            config["basic.auth.user.info"] = basic_auth
        self._client = SchemaRegistryClient(config)
        self._cache: dict[int, Schema] = {}

    def schema(self, schema_id: int) -> Schema:
        if schema_id not in self._cache:
            from confluent_kafka.schema_registry.error import SchemaRegistryError

            try:
                found = self._client.get_schema(schema_id)
            except SchemaRegistryError as exc:
                raise CodecError("unknown_schema_id", str(exc)) from None
            self._cache[schema_id] = json.loads(found.schema_str or "{}")
        return self._cache[schema_id]

    def register(self, subject: str, schema: Schema) -> int:
        from confluent_kafka.schema_registry import Schema as RegistrySchema

        return int(
            self._client.register_schema(subject, RegistrySchema(json.dumps(schema), "AVRO"))
        )
