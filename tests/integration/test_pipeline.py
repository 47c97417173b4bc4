"""The scoring pipeline end to end on a real broker and a real ClickHouse engine."""

from __future__ import annotations

import itertools
from collections import Counter

import msgspec
import pytest
from confluent_kafka import Producer

from stream_app.codecs.avro import AvroRecordCodec, load_schema
from stream_app.codecs.factory import avro_transactions, schema_registry
from stream_app.codecs.json import JsonCodec
from stream_app.devtools.bad_events import CATALOGUE
from stream_app.devtools.generator import TransactionGenerator
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import producer_config
from tests.integration.conftest import query_warehouse, read_topic, wait_for

pytestmark = pytest.mark.integration


def count(settings, query: str) -> int:
    _, rows = query_warehouse(settings, query)
    return int(rows[0][0])


def test_every_valid_event_scored_once_and_every_bad_one_dead_lettered(
    make_settings, running_worker, running_sink
):
    settings = make_settings()
    report = produce(settings, ProduceOptions(events=6000, bad_fraction=0.02, seed=3))
    assert report.malformed > len(CATALOGUE)  # the catalogue cycles: every case was sent

    with running_sink(settings), running_worker(settings):
        wait_for(
            lambda: (
                count(settings, "SELECT count() FROM predictions") >= report.valid
                and count(settings, "SELECT count() FROM dead_letters") >= report.malformed
            ),
            what="every record stored",
        )
    assert count(settings, "SELECT count() FROM predictions") == report.valid
    assert count(settings, "SELECT uniqExact(event_id) FROM predictions") == report.valid
    assert count(settings, "SELECT count() FROM events") == report.valid
    assert count(settings, "SELECT count() FROM dead_letters") == report.malformed
    _, by_reason = query_warehouse(
        settings, "SELECT reason, count() FROM dead_letters GROUP BY reason"
    )
    assert dict((r, int(n)) for r, n in by_reason) == report.malformed_by_reason
    versions = query_warehouse(settings, "SELECT DISTINCT model_version FROM predictions")[1]
    assert versions == [["1"]]


def test_outputs_carry_version_header_and_dead_letters_their_source(make_settings, running_worker):
    settings = make_settings()
    events = [g.event for g in itertools.islice(TransactionGenerator(seed=9), 50)]
    producer = Producer(producer_config(settings))
    codec = JsonCodec()
    for event in events:
        producer.produce(settings.topics.transactions, codec.encode(event), event.card_id.encode())
    for case in CATALOGUE:
        producer.produce(settings.topics.transactions, case.make(events[0]), case.key(events[0]))
    assert producer.flush(30) == 0

    with running_worker(settings):
        predictions = read_topic(settings, settings.topics.predictions, len(events))
        dead = read_topic(settings, settings.topics.dead_letters, len(CATALOGUE))
    assert len(predictions) == len(events)
    assert all(dict(m.headers())["model-version"] == b"1" for m in predictions)
    assert {m.key() for m in predictions} == {e.card_id.encode() for e in events}
    assert len(dead) == len(CATALOGUE)
    reasons = Counter(dict(m.headers())["reason"].decode() for m in dead)
    assert reasons == Counter(case.reason for case in CATALOGUE)
    inputs = read_topic(settings, settings.topics.transactions, len(events) + len(CATALOGUE))
    valid = {codec.encode(event) for event in events}
    malformed_at = {(m.partition(), m.offset()) for m in inputs if m.value() not in valid}
    sources = set()
    for message in dead:
        headers = dict(message.headers())
        assert headers["source-topic"] == settings.topics.transactions.encode()
        sources.add((int(headers["source-partition"]), int(headers["source-offset"])))
    assert sources == malformed_at  # each dead letter points at its own malformed record


def test_avro_events_and_a_newer_producer_schema_are_scored(make_settings, running_worker):
    settings = make_settings()
    registry = schema_registry(settings)
    codec = avro_transactions(settings, registry)
    current = load_schema(settings.schemas_dir, "transaction.avsc")
    newer = {
        **current,
        "fields": [
            *current["fields"],
            {"name": "loyalty_tier", "type": ["null", "string"], "default": None},
        ],
    }
    newer_codec = AvroRecordCodec(registry, f"{settings.topics.transactions}-value", newer)
    assert newer_codec.schema_id != codec.schema_id
    events = [g.event for g in itertools.islice(TransactionGenerator(seed=5), 40)]
    producer = Producer(producer_config(settings))
    for i, event in enumerate(events):
        if i % 2:
            value = codec.encode(event)
        else:
            value = newer_codec.encode({**msgspec.structs.asdict(event), "loyalty_tier": "gold"})
        producer.produce(settings.topics.transactions, value, event.card_id.encode())
    assert producer.flush(30) == 0
    with running_worker(settings):
        predictions = read_topic(settings, settings.topics.predictions, len(events))
        dead = read_topic(settings, settings.topics.dead_letters, 0, timeout_s=1)
    assert len(predictions) == len(events)
    assert dead == []
