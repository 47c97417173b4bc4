"""A poll mapped a whole topic at a time stores what record-by-record mapping stores: the same
rows in the same order, a record that no longer decodes counted and skipped, an invalid
transaction not stored, a row the warehouse refuses parked, the same offsets committed."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from stream_app.codecs.avro import AvroRecordCodec, frame
from stream_app.codecs.factory import topic_codec, transaction_decoder
from stream_app.codecs.json import JsonCodec
from stream_app.codecs.registry import FileSchemaRegistry
from stream_app.devtools.generator import TransactionGenerator
from stream_app.errors import RowsRefused, SchemaRegistryUnavailable
from stream_app.event_checks import EventChecks
from stream_app.settings import Settings
from stream_app.sinks.base import Row
from stream_app.timing import now_ms
from stream_app.warehouse.ingest import Route, WarehouseIngest
from stream_app.warehouse.rows import avro_batch_rows, avro_rows, event_rows
from stream_app.warehouse.schema import EVENTS, PREDICTIONS
from tests.unit.conftest import FakeRecord
from tests.unit.test_codecs_avro_columns import PREDICTION
from tests.unit.test_sinks_contract import RecordingSink

TRANSACTIONS, PREDICTION_TOPIC = "transactions", "predictions"


@dataclass(frozen=True)
class Consumed(FakeRecord):
    def error(self) -> None:
        return None


class OnePollConsumer:
    """Hands out one poll of records, then nothing; keeps the offsets committed."""

    def __init__(self, records: list[Consumed]) -> None:
        self._records = records
        self.committed: list[tuple[str, int, int]] = []

    def consume(self, _n: int, _timeout: float) -> list[Consumed]:
        records, self._records = self._records, []
        return records

    def assignment(self) -> list[TopicPartition]:
        return []

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return partitions

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.committed.extend((tp.topic, tp.partition, tp.offset) for tp in offsets)

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        pass

    def close(self) -> None:
        pass


def poll(settings: Settings, undecodable: bool) -> list[Consumed]:
    """Transactions and their predictions interleaved, with an invalid transaction (its key is
    another card's), a transaction that is not JSON and a prediction the warehouse refuses in the
    middle; if ``undecodable``, a prediction that no longer decodes as well (its poll of
    predictions goes record by record)."""
    registry = FileSchemaRegistry(settings.schemas_dir, settings.schema_registry_dir)
    predictions = topic_codec(settings, registry, "predictions")
    events = [g.event for g in itertools.islice(TransactionGenerator(seed=5), 40)]
    records: list[Consumed] = []
    offsets = itertools.count()
    for i, event in enumerate(events):
        key = b"another-card" if i == 7 else event.card_id.encode()
        value = b"\x01not json" if i == 11 else JsonCodec().encode(event)
        records.append(Consumed(value, key, i % 2, next(offsets), now_ms(), TRANSACTIONS))
        prediction = {**PREDICTION, "event_id": event.event_id, "card_id": event.card_id}
        encoded = predictions.encode(prediction)
        if i == 20 and undecodable:
            encoded = frame(predictions.schema_id, encoded[5:-1])  # truncated: undecodable
        if i == 30:
            encoded = predictions.encode({**prediction, "event_id": "refused"})
        records.append(Consumed(encoded, key, i % 2, next(offsets), now_ms(), PREDICTION_TOPIC))
    return records


def ingest(
    settings: Settings, records: list[Consumed], batches: bool
) -> tuple[WarehouseIngest, dict[str, RecordingSink], OnePollConsumer]:
    registry = FileSchemaRegistry(settings.schemas_dir, settings.schema_registry_dir)
    codec: AvroRecordCodec = topic_codec(settings, registry, "predictions")
    sinks = {TRANSACTIONS: RecordingSink(), PREDICTION_TOPIC: RefusingSink("refused")}
    checks = EventChecks.from_settings(settings)
    routes = [
        Route(
            TRANSACTIONS,
            event_rows(transaction_decoder(settings, registry), checks),
            sinks[TRANSACTIONS],
        ),
        Route(
            PREDICTION_TOPIC,
            avro_rows(codec, PREDICTIONS),
            sinks[PREDICTION_TOPIC],
            avro_batch_rows(codec, PREDICTIONS) if batches else None,
        ),
    ]
    consumer = OnePollConsumer(records)
    loop = WarehouseIngest(consumer, routes, batch_rows=10_000, flush_interval_s=60)  # type: ignore[arg-type]  # the Consumer calls ingest makes
    loop.poll_once()
    assert loop.flush()
    return loop, sinks, consumer


class RefusingSink(RecordingSink):
    """Refuses the rows whose first column (the event id) is ``event_id``."""

    def __init__(self, event_id: str) -> None:
        super().__init__()
        self._event_id = event_id

    def write(self, rows: list[Row]) -> None:
        if any(row[0] == self._event_id for row in rows):
            raise RowsRefused("refused")
        super().write(rows)


def without_ingested_time(rows: list[Row], columns: list[str]) -> list[tuple[Any, ...]]:
    at = columns.index("ingested_time")
    return [(*row[:at], *row[at + 1 :]) for row in rows]


@pytest.mark.parametrize("undecodable", [False, True], ids=["clean", "with-undecodable"])
def test_a_poll_stores_what_record_by_record_mapping_stores(
    settings: Settings, undecodable: bool
) -> None:
    records = poll(settings, undecodable)
    loop, sinks, consumer = ingest(settings, records, batches=True)
    _, reference, reference_consumer = ingest(settings, records, batches=False)
    for topic, table in ((TRANSACTIONS, EVENTS), (PREDICTION_TOPIC, PREDICTIONS)):
        written = [row for batch in sinks[topic].batches for row in batch]
        expected = [row for batch in reference[topic].batches for row in batch]
        assert without_ingested_time(written, table.column_names) == without_ingested_time(
            expected, table.column_names
        )
    events = [row for batch in sinks[TRANSACTIONS].batches for row in batch]
    predictions = [row for batch in sinks[PREDICTION_TOPIC].batches for row in batch]
    assert len(events) == 38  # 40, less the invalid key and the one that is not JSON
    assert len(predictions) == 40 - undecodable - 1  # the refused one parked
    assert [row[0] for row in sinks[PREDICTION_TOPIC].parked] == ["refused"]
    assert loop.stats.undecodable == undecodable
    assert loop.stats.rejected == {PREDICTION_TOPIC: 1}
    assert sorted(consumer.committed) == sorted(reference_consumer.committed)
    assert {topic for topic, _, _ in consumer.committed} == {TRANSACTIONS, PREDICTION_TOPIC}


def test_a_stopped_ingest_loop_closes_its_sinks(settings: Settings) -> None:
    loop, sinks, _ = ingest(settings, poll(settings, undecodable=False), batches=True)
    loop.stop()
    loop.run()
    assert [sink.closed for sink in sinks.values()] == [True, True]


def test_the_batch_mapper_maps_a_clean_poll_and_leaves_a_broken_one_to_the_records(
    settings: Settings,
) -> None:
    registry = FileSchemaRegistry(settings.schemas_dir, settings.schema_registry_dir)
    codec = topic_codec(settings, registry, "predictions")
    records = [r for r in poll(settings, undecodable=True) if r.topic() == PREDICTION_TOPIC]
    to_rows, to_row = avro_batch_rows(codec, PREDICTIONS), avro_rows(codec, PREDICTIONS)
    clean = records[:20]
    assert to_rows(clean, 123) == [to_row(record, 123) for record in clean]
    assert to_rows(records, 123) is None  # the truncated one is among them


class PausingConsumer(OnePollConsumer):
    def __init__(self, records: list[Consumed]) -> None:
        super().__init__(records)
        self.paused = False

    def pause(self, _partitions: list[TopicPartition]) -> None:
        self.paused = True

    def resume(self, _partitions: list[TopicPartition]) -> None:
        self.paused = False


class SilentRegistryRoute:
    """A record-by-record mapper that cannot reach the Schema Registry for the first
    ``outages`` calls on the record at ``offset``, and maps the others through ``to_row``."""

    def __init__(self, to_row: Any, offset: int, outages: int) -> None:
        self._to_row, self._offset, self.outages = to_row, offset, outages

    def __call__(self, record: Consumed, ingested_ms: int) -> Row | None:
        if record.offset() == self._offset and self.outages:
            self.outages -= 1
            raise SchemaRegistryUnavailable("registry silent")
        row: Row | None = self._to_row(record, ingested_ms)
        return row


def test_a_silent_registry_holds_the_batched_records_after_the_one_it_stops_too(
    settings: Settings,
) -> None:
    """The record the registry cannot map and every record after it in the poll, the batched
    topic's included, wait: nothing of them stored or committed until the registry answers."""
    records = poll(settings, undecodable=False)
    registry = FileSchemaRegistry(settings.schemas_dir, settings.schema_registry_dir)
    codec: AvroRecordCodec = topic_codec(settings, registry, "predictions")
    silent = SilentRegistryRoute(
        event_rows(transaction_decoder(settings, registry), EventChecks.from_settings(settings)),
        offset=20,  # the 11th transaction; offsets 0..19 are ten transactions, ten predictions
        outages=1,
    )
    sinks = {TRANSACTIONS: RecordingSink(), PREDICTION_TOPIC: RecordingSink()}
    routes = [
        Route(TRANSACTIONS, silent, sinks[TRANSACTIONS]),
        Route(
            PREDICTION_TOPIC,
            avro_rows(codec, PREDICTIONS),
            sinks[PREDICTION_TOPIC],
            avro_batch_rows(codec, PREDICTIONS),
        ),
    ]
    consumer = PausingConsumer(records)
    loop = WarehouseIngest(consumer, routes, batch_rows=10_000, flush_interval_s=60)  # type: ignore[arg-type]  # the Consumer calls ingest makes
    loop.poll_once()
    assert loop.stats.registry_unavailable_since is not None
    assert consumer.paused
    assert loop.flush()
    stored = {
        topic: [row for batch in sink.batches for row in batch] for topic, sink in sinks.items()
    }
    # those before offset 20: ten of each, less the transaction with an invalid key
    assert [len(rows) for rows in stored.values()] == [9, 10]
    assert max(offset for _, _, offset in consumer.committed) == 20  # next to read: offset 20
    loop._registry._retry_at = 0.0  # retry at once
    loop.poll_once()
    assert loop.stats.registry_unavailable_since is None
    assert loop.flush()
    stored = {
        topic: [row for batch in sink.batches for row in batch] for topic, sink in sinks.items()
    }
    # every record once, in log order: less the invalid key's and the non-JSON transaction
    assert [len(rows) for rows in stored.values()] == [38, 40]
    ids = [record.value() for record in records if record.topic() == PREDICTION_TOPIC]
    assert [row[0] for row in stored[PREDICTION_TOPIC]] == [
        codec.decode(v)["event_id"] for v in ids
    ]
    assert max(offset for _, _, offset in consumer.committed) == len(records)
    assert not consumer.paused
