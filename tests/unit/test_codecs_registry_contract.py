"""Every schema registry obeys the same contract: the file registry, and the Confluent Schema
Registry client against an in-process server that speaks the registry's HTTP API."""

from __future__ import annotations

import functools
import json
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.codecs.avro import AvroRecordCodec, frame
from stream_app.codecs.registry import (
    ConfluentSchemaRegistry,
    FileSchemaRegistry,
    Schema,
    SchemaRegistry,
)
from stream_app.errors import CodecError, ConfigError, SchemaRegistryUnavailable
from tests.unit.registry_server import RegistryServer
from tests.unit.support import SCHEMAS_DIR, concrete_subclasses, copy_schemas

RegistryFactory = Callable[[Path], SchemaRegistry]


@functools.cache
def registry_server() -> RegistryServer:
    """One server for the module; each registry built on it is a fresh namespace."""
    return RegistryServer()


@pytest.fixture(scope="module", autouse=True)
def _stop_the_registry_server() -> Iterator[None]:
    yield
    if registry_server.cache_info().currsize:
        registry_server().close()


#: how to build each implementation, empty but for the shipped schemas, over a scratch directory
FACTORIES: dict[type, RegistryFactory] = {
    FileSchemaRegistry: lambda scratch: FileSchemaRegistry(
        copy_schemas(scratch / "schemas"), scratch / "registered"
    ),
    ConfluentSchemaRegistry: lambda _: ConfluentSchemaRegistry(registry_server().namespace()[0]),
}
#: implementations that cannot run without infrastructure, and why
EXCLUDED: dict[type, str] = {}

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


FOREIGN = {
    "json-schema": ('{"type": "object", "properties": {"a": {"type": "string"}}}', "JSON"),
    "protobuf": ('syntax = "proto3"; message M { string a = 1; }', "PROTOBUF"),
    "json-schema-said-avro": ('{"type": "object"}', None),
    "not-json-said-avro": ("message M {}", None),
}


@pytest.mark.parametrize("foreign", FOREIGN.values(), ids=FOREIGN.keys())
def test_a_record_of_a_schema_that_is_not_avro_is_a_codec_error(
    foreign: tuple[str, str | None],
) -> None:
    """A shared registry holds other teams' JSON and Protobuf schemas: a record framed with one
    of their ids is an incompatible record (dead-lettered, passed over), never an error of
    another type, which ended the sink, the learner, the retrainer and the worker's control
    reader (and each again at its restart)."""
    url, namespace = registry_server().namespace()
    codec = AvroRecordCodec(ConfluentSchemaRegistry(url), "t-value", record_schema("A", ["x"]))
    foreign_id = namespace.add_foreign(*foreign)
    with pytest.raises(CodecError) as raised:
        codec.decode(frame(foreign_id, b"\x02a"))
    assert raised.value.reason == "incompatible_schema"
    assert codec.decode(codec.encode({"x": "still read"})) == {"x": "still read"}


def test_file_registry_persists_and_is_seen_by_a_running_reader(tmp_path: Path) -> None:
    """A producer registering a new version is understood by a worker without a restart."""
    directory, state = copy_schemas(tmp_path / "schemas"), tmp_path / "registered"
    worker_view = FileSchemaRegistry(directory, state)
    producer_view = FileSchemaRegistry(directory, state)
    schema = record_schema("New", ["q"])
    new_id = producer_view.register("new-value", schema)
    worker_view.RELOAD_INTERVAL_S = 0.0  # the worker re-reads at most once a second
    assert worker_view.schema(new_id) == schema
    assert FileSchemaRegistry(directory, state).register("new-value", schema) == new_id


@pytest.mark.parametrize(
    "content", [b"\xff", b"{not json", b"[]", b'{"schemas": [{"id": 9}]}'], ids=str
)
def test_damaged_registry_files_are_a_clear_error_at_start_and_an_outage_at_run_time(
    tmp_path: Path, content: bytes
) -> None:
    """A damaged ``registry.json`` in the state directory: a process starting on it gets one
    error naming the directory; one already running keeps the schemas it knows, and an id it
    does not know is the registry unavailable (retried), not an unknown id (dead-lettered),
    until the file is mended."""
    directory, state = copy_schemas(tmp_path / "schemas"), tmp_path / "registered"
    running = FileSchemaRegistry(directory, state)
    running.RELOAD_INTERVAL_S = 0.0
    new_id = FileSchemaRegistry(directory, state).register("new-value", record_schema("N", ["q"]))
    index = state / "registry.json"
    good = index.read_bytes()
    index.write_bytes(content)
    with pytest.raises(ConfigError, match=f"schema registry files in {state} cannot be read"):
        FileSchemaRegistry(directory, state)
    with pytest.raises(SchemaRegistryUnavailable, match="cannot be read"):
        running.schema(new_id)
    assert running.schema(1)["type"] == "record"  # the shipped ones, known before
    index.write_bytes(good)
    assert running.schema(new_id) == record_schema("N", ["q"])


# --- a Schema Registry that does not answer ----------------------------------------------------


def test_a_registry_answering_503_is_unavailable_then_answers_again() -> None:
    url, namespace = registry_server().namespace()
    schema = record_schema("Outage", ["a"])
    schema_id = ConfluentSchemaRegistry(url).register("outage-value", schema)
    reader = ConfluentSchemaRegistry(url)  # a worker that has not seen the id yet
    namespace.down = True
    with pytest.raises(SchemaRegistryUnavailable):
        reader.schema(schema_id)
    namespace.down = False
    assert reader.schema(schema_id) == schema


def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as bound:  # bound, never listening: connections to it are refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        with pytest.raises(SchemaRegistryUnavailable):
            ConfluentSchemaRegistry(url).schema(1)
