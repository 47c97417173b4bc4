"""Turn records of each consumed topic into rows of their warehouse table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from stream_app.codecs.avro import AvroRecordCodec
from stream_app.codecs.detect import TransactionDecoder
from stream_app.errors import CodecError
from stream_app.event_checks import EventChecks
from stream_app.events import HEARTBEAT
from stream_app.kafka.records import InputRecord
from stream_app.sinks.base import Row
from stream_app.warehouse.schema import CONTROL_EVENTS, Table

RowMapper = Callable[[InputRecord, int], Row | None]


class BatchRowMapper(Protocol):
    """Maps a whole poll of one topic's records at once: their rows (None: not stored), as the
    :data:`RowMapper` of the route gives them one by one; or None when the batch has to go record
    by record (a record that does not decode, or of another schema)."""

    def __call__(
        self, records: Sequence[InputRecord], ingested_ms: int
    ) -> list[Row | None] | None: ...


def event_rows(decoder: TransactionDecoder, checks: EventChecks) -> RowMapper:
    """Valid transactions become ``events`` rows; invalid ones (undecodable or refused by the
    same checks as the workers') are the workers' dead letters."""

    def to_row(record: InputRecord, ingested_ms: int) -> Row | None:
        try:
            e = decoder.decode(record.value())
            checks.check(e, record.key(), record.timestamp(), ingested_ms)
        except CodecError:
            return None
        return (
            e.event_id,
            e.card_id,
            e.merchant_id,
            e.merchant_category,
            e.amount,
            e.currency,
            e.channel,
            e.card_country,
            e.merchant_country,
            e.event_time,
            record.timestamp()[1],
            record.partition(),
            record.offset(),
            ingested_ms,
        )

    return to_row


def avro_rows(codec: AvroRecordCodec, table: Table, log_position: bool = False) -> RowMapper:
    """Avro records whose fields are the table's columns (``ingested_time`` is the sink's; with
    ``log_position``, ``source_partition`` and ``source_offset`` are the record's own)."""
    names = table.column_names

    def to_row(record: InputRecord, ingested_ms: int) -> Row | None:
        value: dict[str, Any] = codec.decode(record.value() or b"")
        value["ingested_time"] = ingested_ms
        if log_position:
            value["source_partition"], value["source_offset"] = record.partition(), record.offset()
        return tuple(value[name] for name in names)

    return to_row


def avro_batch_rows(codec: AvroRecordCodec, table: Table) -> BatchRowMapper:
    """The rows :func:`avro_rows` gives (without the log position), for a whole batch decoded
    column by column."""
    names = table.column_names

    def to_rows(records: Sequence[InputRecord], ingested_ms: int) -> list[Row | None] | None:
        columns = codec.decode_columns([record.value() or b"" for record in records])
        if columns is None:
            return None
        columns["ingested_time"] = [ingested_ms] * len(records)
        return list(zip(*(columns[name] for name in names), strict=True))

    return to_rows


def control_rows(codec: AvroRecordCodec) -> RowMapper:
    """Acknowledgements of commands; heartbeats stay on the topic (liveness, not history)."""
    store = avro_rows(codec, CONTROL_EVENTS)

    def to_row(record: InputRecord, ingested_ms: int) -> Row | None:
        row = store(record, ingested_ms)
        return None if row is not None and row[1] == HEARTBEAT else row

    return to_row
