"""Every schema registry that can run offline obeys the same contract."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.codecs.registry import (
    ConfluentSchemaRegistry,
    FileSchemaRegistry,
    Schema,
    SchemaRegistry,
)
from stream_app.errors import CodecError
from tests.unit.support import SCHEMAS_DIR, concrete_subclasses, copy_schemas

RegistryFactory = Callable[[Path], SchemaRegistry]

#: how to build each implementation over a scratch directory
FACTORIES: dict[type, RegistryFactory] = {
    FileSchemaRegistry: lambda scratch: FileSchemaRegistry(copy_schemas(scratch / "schemas")),
}
#: implementations that cannot run without infrastructure, and why
EXCLUDED: dict[type, str] = {
    ConfluentSchemaRegistry: "needs a Confluent Schema Registry server; none is installable here",
}

REGISTRIES = concrete_subclasses(SchemaRegistry)
OFFLINE = [cls for cls in REGISTRIES if cls not in EXCLUDED]


def record_schema(name: str, fields: list[str]) -> Schema:
    return {
        "type": "record",
        "name": name,
        "fields": [{"name": f, "type": "string"} for f in fields],
    }


#: small, distinct Avro record schemas
schemas = st.builds(
    record_schema,
    st.sampled_from(["A", "B", "C"]),
    st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=3, unique=True),
)


def test_every_registry_is_tested_or_excluded_with_a_reason() -> None:
    assert FileSchemaRegistry in REGISTRIES
    missing = [c.__qualname__ for c in REGISTRIES if c not in FACTORIES and c not in EXCLUDED]
    assert not missing, f"add these registries to FACTORIES or EXCLUDED: {missing}"
    assert all(EXCLUDED.values())
    assert OFFLINE, "no registry runs offline: the contract tests nothing"


@pytest.mark.parametrize("cls", OFFLINE, ids=lambda c: c.__name__)
def test_register_is_idempotent_and_schema_returns_it(cls: type, tmp_path: Path) -> None:
    registry = FACTORIES[cls](tmp_path)
    schema = record_schema("Evolved", ["a", "b"])
    first = registry.register("things-value", schema)
    again = registry.register("things-value", json.loads(json.dumps(schema)))
    assert first == again
    assert registry.schema(first) == schema


@pytest.mark.parametrize("cls", OFFLINE, ids=lambda c: c.__name__)
def test_known_schemas_keep_their_ids(cls: type, tmp_path: Path) -> None:
    registry = FACTORIES[cls](tmp_path)
    index = json.loads((SCHEMAS_DIR / "registry.json").read_text())
    for entry in index["schemas"]:
        schema = json.loads((SCHEMAS_DIR / entry["file"]).read_text())
        assert registry.register(entry["subject"], schema) == entry["id"]


@pytest.mark.parametrize("cls", OFFLINE, ids=lambda c: c.__name__)
@settings(deadline=None, max_examples=25)
@given(registrations=st.lists(st.tuples(st.sampled_from(["s1", "s2"]), schemas), max_size=8))
def test_ids_are_distinct_per_schema(cls: type, registrations: list[tuple[str, Schema]]) -> None:
    """Equal (subject, schema) pairs share an id; different schemas never share one."""
    with tempfile.TemporaryDirectory() as scratch:
        registry = FACTORIES[cls](Path(scratch))
        ids: dict[tuple[str, str], int] = {}
        for subject, schema in registrations:
            schema_id = registry.register(subject, schema)
            key = (subject, json.dumps(schema, sort_keys=True))
            assert ids.setdefault(key, schema_id) == schema_id
            assert registry.schema(schema_id) == schema
        schemas_by_id: dict[int, set[str]] = {}
        for (_, text), schema_id in ids.items():
            schemas_by_id.setdefault(schema_id, set()).add(text)
        shared = {i: texts for i, texts in schemas_by_id.items() if len(texts) > 1}
        assert not shared, f"one id for several schemas: {shared}"


@pytest.mark.parametrize("cls", OFFLINE, ids=lambda c: c.__name__)
def test_unknown_id_is_a_codec_error(cls: type, tmp_path: Path) -> None:
    registry = FACTORIES[cls](tmp_path)
    with pytest.raises(CodecError) as raised:
        registry.schema(987_654)
    assert raised.value.reason == "unknown_schema_id"


def test_file_registry_persists_and_is_seen_by_a_running_reader(tmp_path: Path) -> None:
    """A producer registering a new version is understood by a worker without a restart."""
    directory = copy_schemas(tmp_path / "schemas")
    worker_view = FileSchemaRegistry(directory)
    producer_view = FileSchemaRegistry(directory)
    schema = record_schema("New", ["q"])
    new_id = producer_view.register("new-value", schema)
    worker_view.RELOAD_INTERVAL_S = 0.0  # the worker re-reads at most once a second
    assert worker_view.schema(new_id) == schema
    assert FileSchemaRegistry(directory).register("new-value", schema) == new_id
