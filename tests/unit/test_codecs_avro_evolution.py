"""Schema evolution: records written with another compatible schema decode to the same event."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from stream_app.codecs.avro import AvroCodec, AvroRecordCodec, load_schema
from stream_app.codecs.factory import schema_registry, transaction_decoder
from stream_app.codecs.registry import FileSchemaRegistry, Schema
from stream_app.devtools.generator import TransactionGenerator
from stream_app.errors import CodecError
from stream_app.events import Transaction
from stream_app.settings import Settings

SUBJECT = "transactions-value"


def events(count: int = 20) -> list[Transaction]:
    return [g.event for g in itertools.islice(TransactionGenerator(seed=3), count)]


def with_optional_note(schema: Schema) -> Schema:
    """The current schema plus an optional field with a default: a compatible evolution."""
    evolved = copy.deepcopy(schema)
    evolved["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    return evolved


def with_amount_as_string(schema: Schema) -> Schema:
    changed = copy.deepcopy(schema)
    for field in changed["fields"]:
        if field["name"] == "amount":
            field["type"] = "string"
    return changed


def as_record(event: Transaction, **extra: Any) -> dict[str, Any]:
    return {**msgspec.structs.asdict(event), **extra}


@pytest.fixture
def current(schemas_dir: Path) -> Schema:
    return load_schema(schemas_dir, "transaction.avsc")


def test_newer_writer_is_read_by_the_current_reader(
    file_registry: FileSchemaRegistry, schemas_dir: Path, current: Schema
) -> None:
    known = {e["id"] for e in json.loads((schemas_dir / "registry.json").read_text())["schemas"]}
    reader = AvroCodec(file_registry, current, SUBJECT)
    writer = AvroRecordCodec(file_registry, SUBJECT, with_optional_note(current))
    assert writer.schema_id not in known, "the evolved schema must get a new id"
    assert writer.schema_id != reader.schema_id
    for event in events():
        value = writer.encode(as_record(event, note="added by a newer producer"))
        assert reader.decode(value) == event


def test_current_writer_is_read_by_a_newer_reader(
    file_registry: FileSchemaRegistry, current: Schema
) -> None:
    writer = AvroCodec(file_registry, current, SUBJECT)
    newer_reader = AvroCodec(file_registry, with_optional_note(current), SUBJECT)
    for event in events():
        assert newer_reader.decode(writer.encode(event)) == event


def test_new_schema_is_understood_by_a_running_decoder(settings: Settings, current: Schema) -> None:
    """A worker's decoder, built before the producer registered the new schema, reads it."""
    worker_registry = schema_registry(settings)
    worker_registry.RELOAD_INTERVAL_S = 0.0  # instead of waiting a second for the re-read
    decoder = transaction_decoder(settings, worker_registry)
    producer = AvroRecordCodec(schema_registry(settings), SUBJECT, with_optional_note(current))
    for event in events(5):
        assert decoder.decode(producer.encode(as_record(event, note=None))) == event


def test_incompatible_writer_is_a_codec_error(
    file_registry: FileSchemaRegistry, current: Schema
) -> None:
    reader = AvroCodec(file_registry, current, SUBJECT)
    writer = AvroRecordCodec(file_registry, SUBJECT, with_amount_as_string(current))
    event = events(1)[0]
    with pytest.raises(CodecError) as raised:
        reader.decode(writer.encode(as_record(event, amount=str(event.amount))))
    assert raised.value.reason == "incompatible_schema"


def test_json_with_extra_fields_decodes_to_the_same_event(settings: Settings) -> None:
    decoder = transaction_decoder(settings, schema_registry(settings))
    for event in events():
        value = msgspec.json.encode(
            as_record(event, note="x", nested={"a": [1, 2, {"b": None}]}, version=2)
        )
        assert decoder.decode(value) == event
