"""Building codecs never writes the repository's tracked ``schemas/`` (issue 15): schema ids
registered at run time go to the state directory (or to a Schema Registry)."""

from __future__ import annotations

import json
from pathlib import Path

from stream_app.catalogue import CATALOGUE, separate_topics
from stream_app.codecs.factory import (
    avro_transactions,
    schema_registry,
    topic_codec,
    transaction_decoder,
)
from stream_app.codecs.registry import FileSchemaRegistry
from stream_app.control.commands import ControlCodecs
from stream_app.settings import Settings
from tests.unit.support import SCHEMAS_DIR, copy_schemas, snapshot

#: every topic renamed: every codec needs a subject the shipped registry does not have
RENAMED = separate_topics("renamed", partitions=4)
AVRO_TOPICS = [spec for spec in CATALOGUE if spec.schema]


def build_every_codec(settings: Settings) -> None:
    registry = schema_registry(settings)
    for spec in AVRO_TOPICS:
        topic_codec(settings, registry, spec.field)
    avro_transactions(settings, registry)
    transaction_decoder(settings, registry)
    ControlCodecs(settings, registry)


def test_building_every_codec_leaves_the_schema_files_as_they_are(tmp_path: Path) -> None:
    shipped = copy_schemas(tmp_path / "schemas")
    before = snapshot(shipped)
    state = tmp_path / "state" / "schemas"
    settings = Settings(schemas_dir=shipped, schema_registry_dir=state, topics=RENAMED)
    build_every_codec(settings)
    assert snapshot(shipped) == before
    registered = json.loads((state / "registry.json").read_text())["schemas"]
    assert {e["subject"] for e in registered} == {f"{s.name(RENAMED)}-value" for s in AVRO_TOPICS}
    shipped_ids = {e["id"] for e in json.loads((shipped / "registry.json").read_text())["schemas"]}
    assert not shipped_ids & {e["id"] for e in registered}, "an id given twice"
    # another process (a new registry over the same files) sees the same ids
    again = FileSchemaRegistry(shipped, state)
    assert all(again.schema(e["id"]) for e in registered)


def test_the_repository_schemas_stay_unchanged(tmp_path: Path) -> None:
    """With the tracked directory itself (the default ``schemas_dir``)."""
    settings = Settings(schema_registry_dir=tmp_path / "registered", topics=RENAMED)
    assert settings.schemas_dir == SCHEMAS_DIR
    before = snapshot(SCHEMAS_DIR)
    build_every_codec(settings)
    assert snapshot(SCHEMAS_DIR) == before
