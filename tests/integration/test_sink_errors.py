"""The sink never crash-loops on what the warehouse says: it splits, parks, or waits and retries."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import msgspec
import pytest
from confluent_kafka import Producer

from stream_app.codecs.json import JsonCodec
from stream_app.devtools.generator import TransactionGenerator
from stream_app.events import Transaction
from stream_app.kafka.config import producer_config
from stream_app.settings import Settings
from stream_app.warehouse.client import connect
from stream_app.warehouse.service import build_ingest
from tests.integration.conftest import committed, in_thread, query_warehouse, wait_for

pytestmark = pytest.mark.integration


def events(n: int, seed: int) -> list[Transaction]:
    return [g.event for g in itertools.islice(TransactionGenerator(seed=seed), n)]


def send(settings: Settings, transactions: list[Transaction]) -> None:
    producer = Producer(producer_config(settings))
    codec = JsonCodec()
    for event in transactions:
        producer.produce(settings.topics.transactions, codec.encode(event), event.card_id.encode())
    assert producer.flush(30) == 0


def count(settings: Settings, query: str) -> int:
    return int(query_warehouse(settings, query)[1][0][0])


def test_one_batch_across_more_months_than_one_insert_takes_is_stored(make_settings):
    settings = make_settings(  # one flush holds every month; ten years back are accepted and kept
        sink_flush_interval_ms=2000, retention_days=20 * 366, event_time_lateness_days=13 * 366
    )
    first = datetime(datetime.now(UTC).year - 11, 1, 15, tzinfo=UTC)
    months = [
        first.replace(year=first.year + m // 12, month=m % 12 + 1) for m in range(120)
    ]  # 120 valid events, one a month: more than the engine's 100 partitions per INSERT
    dated = [
        msgspec.structs.replace(event, event_time=int(month.timestamp() * 1000))
        for event, month in zip(events(120, seed=21), months, strict=True)
    ]
    send(settings, dated)
    with in_thread(build_ingest(settings)) as sink:
        wait_for(
            lambda: sink.loop.stats.stored.get(settings.topics.transactions, 0) >= 120,
            what="120 events stored",
        )
        assert sink.thread.is_alive()
    assert count(settings, "SELECT count() FROM events") == 120
    assert count(settings, "SELECT uniqExact(toYYYYMM(event_time)) FROM events") == 120
    assert count(settings, "SELECT count() FROM rejected_rows") == 0


def test_records_that_no_longer_decode_are_counted_and_not_logged_one_by_one(make_settings, caplog):
    settings = make_settings()
    producer = Producer(producer_config(settings))
    for i in range(5):
        producer.produce(settings.topics.predictions, b"not avro %d" % i, b"card")
    assert producer.flush(30) == 0
    with in_thread(build_ingest(settings)) as sink:
        wait_for(lambda: sink.loop.stats.undecodable == 5, what="5 records undecodable")
    lines = [r for r in caplog.records if "not stored" in r.getMessage()]
    assert len(lines) == 1  # before: one error line per record
    assert "1 undecodable so far" in lines[0].getMessage()


def test_rows_the_warehouse_refuses_are_parked_and_the_rest_stored(make_settings):
    settings = make_settings()
    ingest = build_ingest(settings)  # creates the tables
    connect(settings).command(
        f"ALTER TABLE {settings.warehouse_database}.events_raw "
        "ADD CONSTRAINT no_refused_merchant CHECK merchant_id != 'refused-merchant'"
    )
    batch = events(200, seed=22)
    refused = {batch[i].event_id for i in (5, 90, 171)}
    send(
        settings,
        [
            msgspec.structs.replace(e, merchant_id="refused-merchant")
            if e.event_id in refused
            else e
            for e in batch
        ],
    )
    with in_thread(ingest):
        wait_for(
            lambda: committed(settings, settings.sink_group) == len(batch),
            what="every offset committed",
        )
        later = events(20, seed=23)
        send(settings, later)  # and it carries on
        wait_for(
            lambda: committed(settings, settings.sink_group) == len(batch) + len(later),
            what="later ones too",
        )
    assert ingest.stats.rejected == {settings.topics.transactions: 3}
    assert count(settings, "SELECT count() FROM events") == len(batch) + len(later) - 3
    _, parked = query_warehouse(settings, "SELECT table_name, error, row_json FROM rejected_rows")
    assert len(parked) == 3
    assert {table for table, _, _ in parked} == {"events"}
    assert all("VIOLATED_CONSTRAINT" in error for _, error, _ in parked)
    assert {msgspec.json.decode(row)[0] for _, _, row in parked} == refused


def test_inserts_the_warehouse_cannot_take_are_retried_and_offsets_wait(make_settings):
    settings = make_settings()
    ingest = build_ingest(settings)
    warehouse, database = connect(settings), settings.warehouse_database
    hidden = f"hidden_{uuid.uuid4().hex[:8]}"
    warehouse.command(f"RENAME TABLE {database}.events_raw TO {database}.{hidden}")
    batch = events(300, seed=24)
    send(settings, batch)
    with in_thread(ingest) as sink:
        wait_for(
            lambda: ingest.stats.failed_inserts >= 3,
            what="three failed inserts",
        )
        assert (
            committed(settings, settings.sink_group) == 0
        )  # nothing committed while the rows are not written
        assert ingest.stats.unwritable_since is not None
        assert sink.thread.is_alive()
        warehouse.command(f"RENAME TABLE {database}.{hidden} TO {database}.events_raw")
        wait_for(
            lambda: committed(settings, settings.sink_group) == len(batch),
            what="every offset committed",
        )
    assert ingest.stats.unwritable_since is None
    assert count(settings, "SELECT count() FROM events") == len(batch)
    assert count(settings, "SELECT uniqExact(event_id) FROM events") == len(batch)
    assert count(settings, "SELECT count() FROM rejected_rows") == 0
