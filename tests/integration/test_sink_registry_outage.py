"""A Schema Registry outage while the sink decodes: it waits for the registry, holds what it
cannot map, reports unhealthy, commits nothing it did not store, and stores everything once
the registry answers again (it used to crash-loop: only :class:`CodecError` was caught)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import msgspec
import pytest
from confluent_kafka import Producer

from stream_app.codecs.avro import AvroRecordCodec, load_schema
from stream_app.codecs.registry import ConfluentSchemaRegistry
from stream_app.devtools.generator import TransactionGenerator
from stream_app.kafka.config import producer_config
from stream_app.warehouse.health import SinkHealth
from stream_app.warehouse.service import build_ingest
from tests.integration.conftest import committed, in_thread, query_warehouse, wait_for
from tests.unit.registry_server import RegistryServer

pytestmark = pytest.mark.integration

EVENTS = 300


@pytest.fixture(scope="module")
def server() -> Iterator[RegistryServer]:
    running = RegistryServer()
    yield running
    running.close()


def test_the_sink_waits_for_a_silent_schema_registry_and_then_stores_everything(
    make_settings, server
):
    url, registry = server.namespace()
    settings = make_settings(schema_registry_url=url)
    ingest = build_ingest(settings)  # registers the schemas it writes with
    health = SinkHealth(ingest.stats, settings.health_stall_s)
    schema = load_schema(settings.schemas_dir, "transaction.avsc")
    newer = {**schema, "fields": [*schema["fields"], {"name": "note", "type": ["null", "string"],
                                                      "default": None}]}  # fmt: skip
    codec = AvroRecordCodec(
        ConfluentSchemaRegistry(url), f"{settings.topics.transactions}-value", newer
    )  # a producer on a newer version: the sink must fetch its id
    registry.down = True
    producer = Producer(producer_config(settings))
    events = [g.event for g in itertools.islice(TransactionGenerator(seed=51), EVENTS)]
    for event in events:
        value = codec.encode({**msgspec.structs.asdict(event), "note": None})
        producer.produce(settings.topics.transactions, value, event.card_id.encode())
    assert producer.flush(30) == 0
    with in_thread(ingest) as sink:
        wait_for(
            lambda: (
                not sink.thread.is_alive()
                or any("Schema Registry" in reason for reason in health()["reasons"])
            ),
            60,
            "the sink reporting the outage (or dying of it)",
        )
        assert sink.thread.is_alive()  # it waits: no crash, so no crash loop
        assert committed(settings, settings.sink_group) == 0  # nothing stored, nothing committed
        registry.down = False
        wait_for(
            lambda: committed(settings, settings.sink_group) == EVENTS,
            60,
            "every record stored and committed once the registry answers",
        )
        assert health()["reasons"] == []
    rows = query_warehouse(settings, "SELECT count(), uniqExact(event_id) FROM events")[1]
    assert list(rows[0]) == [EVENTS, EVENTS]
