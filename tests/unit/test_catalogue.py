"""Everything about a topic is derived from its one catalogue entry (``stream_app/catalogue.py``):
topic creation and the start-up check, the worker's and the sink's topic lists, codecs, the
sink's routes and the tables they land in; nothing describes a topic outside the catalogue."""

from __future__ import annotations

import json
from typing import Any

from clickhouse_connect.driver.client import Client

from stream_app.catalogue import BY_FIELD, CATALOGUE, STORED, Key, separate_topics
from stream_app.codecs.avro import load_schema
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.kafka.topics import sink_topics, wanted_topics, worker_topics
from stream_app.settings import Settings, Topics
from stream_app.timing import now_ms
from stream_app.warehouse.ingest import IngestStats
from stream_app.warehouse.schema import BY_VIEW, REJECTED_ROWS, create_statements
from stream_app.warehouse.service import topic_routes
from stream_app.warehouse.sink import ClickHouseSink
from tests.unit.conftest import FakeRecord
from tests.unit.support import SCHEMAS_DIR

#: columns the sink adds to a topic's fields: when it ingested the record, and (``events``) where
#: in the log it was and its CreateTime
SINK_COLUMNS = {"ingested_time", "source_partition", "source_offset", "create_time"}


def fields(topic_field: str) -> dict[str, Any]:
    """The Avro fields of a topic's schema: name → type."""
    schema_file = BY_FIELD[topic_field].schema
    assert schema_file is not None
    return {f["name"]: f["type"] for f in load_schema(SCHEMAS_DIR, schema_file)["fields"]}


def test_every_topic_setting_is_one_catalogue_entry() -> None:
    names = {name for name, info in Topics.model_fields.items() if info.annotation is str}
    assert [spec.field for spec in CATALOGUE] == list(BY_FIELD)
    assert set(BY_FIELD) == names


def test_topics_created_and_checked_are_the_catalogue(settings: Settings) -> None:
    topics = separate_topics("t", partitions=3)
    wanted = wanted_topics(settings.model_copy(update={"topics": topics}))
    assert list(wanted) == [spec.name(topics) for spec in CATALOGUE]
    for spec in CATALOGUE:
        # keyed by card id: the input's partitions, so that a card's records meet in one partition
        partitions = 3 if spec.key is Key.CARD_ID else 1
        config = {"cleanup.policy": "compact"} if spec.compacted else {}
        assert wanted[spec.name(topics)] == (partitions, config), spec.field
    # the topics as they were before the catalogue
    assert (
        wanted.items()
        >= {
            "t-transactions": (3, {}),
            "t-predictions": (3, {}),
            "t-dead-letters": (3, {}),
            "t-alerts": (3, {}),
            "t-card-state": (3, {"cleanup.policy": "compact"}),
            "t-control": (1, {"cleanup.policy": "compact"}),
            "t-control-status": (1, {}),
            "t-model-versions": (1, {"cleanup.policy": "compact"}),
        }.items()
    )


def test_the_worker_and_the_sink_use_the_topics_the_catalogue_gives_them(
    settings: Settings,
) -> None:
    topics = separate_topics("t", partitions=2)
    named = settings.model_copy(update={"topics": topics})
    used = worker_topics(named)
    assert used == tuple(spec.name(topics) for spec in CATALOGUE if spec.worker)
    assert set(used) >= {
        "t-transactions", "t-predictions", "t-dead-letters", "t-alerts", "t-control-status",
        "t-card-state", "t-control",
    }  # fmt: skip
    stored = sink_topics(named)
    assert stored == tuple(spec.name(topics) for spec in CATALOGUE if spec.table)
    assert set(stored) >= {
        "t-transactions", "t-predictions", "t-dead-letters", "t-alerts", "t-control-status",
        "t-model-versions",
    }  # fmt: skip


def test_every_schema_file_and_shipped_id_belongs_to_a_catalogue_entry() -> None:
    """The newest shipped id of a subject is the catalogue's schema; earlier ids keep their own
    files, for records written before (control_command_v1.avsc)."""
    schemas = {spec.schema for spec in CATALOGUE if spec.schema}
    defaults = Topics()
    by_subject = {f"{spec.name(defaults)}-value": spec.schema for spec in CATALOGUE}
    shipped = json.loads((SCHEMAS_DIR / "registry.json").read_text())["schemas"]
    newest = {e["subject"]: e["file"] for e in sorted(shipped, key=lambda e: e["id"])}
    assert newest.items() <= by_subject.items()
    earlier = {e["file"] for e in shipped} - set(newest.values())
    assert {p.name for p in SCHEMAS_DIR.glob("*.avsc")} == schemas | earlier


def test_stored_topics_land_in_their_tables_and_no_table_is_outside_the_catalogue() -> None:
    assert set(STORED.values()) == set(BY_VIEW) - {REJECTED_ROWS.view}


def test_every_avro_field_of_a_stored_topic_has_its_column() -> None:
    """The DDL stays hand-written (ClickHouse types, sorting keys, partitions): this keeps the
    columns in step with the fields, nullable with nullable, array with array."""
    for spec, view in STORED.items():
        columns = dict(BY_VIEW[view].columns)
        avro = fields(spec.field)
        assert set(avro) <= set(columns), f"{view}: no column for {set(avro) - set(columns)}"
        assert set(columns) - set(avro) <= SINK_COLUMNS, view
        for name, kind in avro.items():
            nullable = isinstance(kind, list) and "null" in kind
            assert nullable == ("Nullable(" in columns[name]), f"{view}.{name}"
            is_array = isinstance(kind, dict) and kind["type"] == "array"
            assert is_array == columns[name].startswith("Array("), f"{view}.{name}"


def sample(kind: Any) -> Any:
    """A value of an Avro type (nullable ones not null, arrays of one)."""
    if isinstance(kind, list):
        return sample(next(k for k in kind if k != "null"))
    if isinstance(kind, dict):
        return [sample(kind["items"])]
    values = {
        "string": "x",
        "long": now_ms(),
        "int": 1,
        "double": 0.5,
        "bytes": b"x",
        "boolean": True,
    }
    return values[kind]


def test_a_record_of_every_stored_topic_reaches_its_table(
    settings: Settings, chdb_client: Client, database: str
) -> None:
    """The sink's routes, derived from the catalogue, through the real engine: a record encoded
    with the topic's codec becomes one row of its table (transactions: ``test_sink_process``)."""
    settings = settings.model_copy(update={"warehouse_database": database})
    for statement in create_statements(database):
        chdb_client.command(statement)
    registry = schema_registry(settings)
    stats = IngestStats()
    routes = {r.topic: r for r in topic_routes(settings, registry, chdb_client, stats)}
    assert list(routes) == list(sink_topics(settings))
    for spec, view in STORED.items():
        route = routes[spec.name(settings.topics)]
        assert isinstance(route.sink, ClickHouseSink)
        assert route.sink.table is BY_VIEW[view]
        if spec is BY_FIELD["transactions"]:
            continue
        record = {name: sample(kind) for name, kind in fields(spec.field).items()}
        value = topic_codec(settings, registry, spec.field).encode(record)
        row = route.to_row(FakeRecord(value, b"key", 0, 0, _topic=route.topic), now_ms())
        assert row is not None, view
        route.sink.add([row])
        assert route.sink.flush() == 1
        query = f"SELECT count() FROM {database}.{view}"  # noqa: S608  # the test's own names
        assert chdb_client.command(query) == 1, view
    # the one label written counted by its source, and nothing else counted
    label = sample(fields("labels")["label_source"])
    assert stats.labels_by_source == {str(label): 1}
