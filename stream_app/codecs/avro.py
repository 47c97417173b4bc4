"""Avro records in the Confluent wire format: magic byte 0, 4-byte big-endian schema id, body."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import fastavro
import msgspec

from stream_app.codecs.avro_column_reader import ColumnReader
from stream_app.codecs.avro_columns import Column, ColumnEncoder
from stream_app.codecs.base import TransactionCodec
from stream_app.codecs.registry import Schema, SchemaRegistry
from stream_app.errors import CodecError
from stream_app.events import Transaction

MAGIC = b"\x00"
_HEADER = struct.Struct(">bI")


def load_schema(schemas_dir: Path, file_name: str) -> Schema:
    """Read an ``.avsc`` file as a dict."""
    schema: Schema = json.loads((schemas_dir / file_name).read_text())
    return schema


def frame(schema_id: int, body: bytes) -> bytes:
    """Prefix an Avro body with the wire-format header.

    >>> frame(7, b"x")
    b'\\x00\\x00\\x00\\x00\\x07x'
    """
    return _HEADER.pack(0, schema_id) + body


def unframe(value: bytes) -> tuple[int, memoryview]:
    """Split a wire-format record into its schema id and body.

    >>> unframe(b"\\x00\\x00\\x00\\x00\\x07x")[0]
    7
    >>> unframe(b'{"a": 1}')
    Traceback (most recent call last):
    ...
    stream_app.errors.CodecError: bad_magic_byte: expected 0x00, got 0x7b
    """
    if len(value) < _HEADER.size:
        raise CodecError("truncated_avro", f"{len(value)} bytes is shorter than the 5-byte header")
    magic, schema_id = _HEADER.unpack_from(value)
    if magic != 0:
        raise CodecError("bad_magic_byte", f"expected 0x00, got 0x{magic & 0xFF:02x}")
    return schema_id, memoryview(value)[_HEADER.size :]


class AvroRecordCodec:
    """Encodes and decodes dict records of one Avro schema, resolving older or newer writers."""

    def __init__(self, registry: SchemaRegistry, subject: str, schema: Schema) -> None:
        self._registry = registry
        self.schema_id = registry.register(subject, schema)
        self._schema = fastavro.parse_schema(schema)
        self._writers: dict[int, Any] = {self.schema_id: self._schema}

    def encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(_HEADER.pack(0, self.schema_id))
        fastavro.schemaless_writer(buffer, self._schema, record)
        return buffer.getvalue()

    @cached_property
    def _columns(self) -> ColumnEncoder:
        return ColumnEncoder(self._schema)

    def encode_columns(
        self, columns: Mapping[str, Column], constants: Mapping[str, Any] | None = None
    ) -> list[bytes]:
        """The records of a batch given as columns (field name → one value per row) and
        constants (field name → the value of every row), each as :meth:`encode` would write it,
        in a fraction of the time; only for a flat schema of the types
        :mod:`stream_app.codecs.avro_columns` writes (ValueError otherwise)."""
        return self._columns.encode(columns, _HEADER.pack(0, self.schema_id), constants)

    @cached_property
    def _column_reader(self) -> ColumnReader | None:
        try:
            return ColumnReader(self._schema)
        except ValueError:  # not a flat schema: records are decoded one by one
            return None

    def decode_columns(self, values: Sequence[bytes]) -> dict[str, list[Any]] | None:
        """The records of a batch as columns (field name → one value per record), each value as
        :meth:`decode` gives it, in a fraction of the time; None when the batch needs
        :meth:`decode` record by record: a record of another schema id, or any record that
        :meth:`decode` would refuse, or a schema that is not flat."""
        header = _HEADER.pack(0, self.schema_id)
        if self._column_reader is None or not all(v[:5] == header for v in values):
            return None
        return self._column_reader.read([memoryview(v)[_HEADER.size :] for v in values])

    def decode(self, value: bytes) -> dict[str, Any]:
        schema_id, body = unframe(value)
        writer = self._writers.get(schema_id)
        if writer is None:
            schema = self._registry.schema(schema_id)
            try:
                writer = fastavro.parse_schema(schema)
            except Exception as exc:  # a registry document that is no Avro schema: the
                # parser's errors are of many types, and none may stop the reader of the record
                reason = f"schema {schema_id} is not an Avro schema: {type(exc).__name__}: {exc}"
                raise CodecError("incompatible_schema", reason) from None
            self._writers[schema_id] = writer
        stream = io.BytesIO(body)
        try:
            record = fastavro.schemaless_reader(
                stream, writer, self._schema if schema_id != self.schema_id else None
            )
        except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
            raise CodecError("malformed_avro", f"{type(exc).__name__}: {exc}") from None
        except fastavro.read.SchemaResolutionError as exc:
            raise CodecError("incompatible_schema", str(exc)) from None
        if stream.tell() != len(body):
            raise CodecError("malformed_avro", f"{len(body) - stream.tell()} trailing bytes")
        if not isinstance(record, dict):
            raise CodecError("malformed_avro", "the schema does not describe a record")
        return record


class AvroCodec(TransactionCodec):
    """Transactions as Avro in the wire format, validated like JSON ones."""

    def __init__(self, registry: SchemaRegistry, schema: Schema, subject: str) -> None:
        self._records = AvroRecordCodec(registry, subject, schema)

    @property
    def schema_id(self) -> int:
        return self._records.schema_id

    def encode(self, event: Transaction) -> bytes:
        return self._records.encode(msgspec.structs.asdict(event))

    def decode(self, value: bytes) -> Transaction:
        record = self._records.decode(value)
        try:
            return msgspec.convert(record, Transaction)
        except msgspec.ValidationError as exc:
            raise CodecError("invalid_field", str(exc)) from None

    def accepts(self, value: bytes) -> bool:
        return value[:1] == MAGIC
