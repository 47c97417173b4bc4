"""Avro bodies of a whole batch of flat records, read column by column.

The mirror of :mod:`stream_app.codecs.avro_columns` for the warehouse sink: fastavro's
``schemaless_reader`` walks the schema once per record and builds a dict, most of the sink's cost
per prediction. A :class:`ColumnReader` is compiled once from a record schema whose fields are
``int``, ``long``, ``double``, ``string`` or a union of ``null`` and one of those, and reads one
field of every record at once with numpy: one cursor per record, moved field by field. Strings
are sliced and decoded one by one (their lengths differ).

It reads only what fastavro would read the same way. A batch with any record fastavro would
refuse (a field past the record's end, trailing bytes, a union branch that does not exist, a
varint longer than ten bytes, invalid UTF-8) gives ``None``: the caller decodes that batch record
by record, which finds the culprit and says why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from fastavro.types import Schema

from stream_app.codecs.avro_columns import field_handler, record_fields

_VARINT_BYTES = 10
_WINDOW = np.arange(_VARINT_BYTES, dtype=np.int64)
_SHIFTS = np.arange(0, 7 * _VARINT_BYTES, 7, dtype=np.uint64)
_DOUBLE_BYTES = np.arange(8, dtype=np.int64)


class Malformed(Exception):
    """A record of the batch is not what the schema says (the batch goes record by record)."""


class _Cursor:
    """The batch as one byte array, each record's read position and end."""

    def __init__(self, bodies: Sequence[bytes | memoryview]) -> None:
        sizes = np.fromiter(map(len, bodies), dtype=np.int64, count=len(bodies))
        self.buffer = b"".join(bodies)
        # padded so that a fixed-size window at any position stays inside the array
        self.bytes = np.frombuffer(self.buffer + bytes(_VARINT_BYTES), dtype=np.uint8)
        self.end = np.cumsum(sizes)
        self.at = self.end - sizes

    def advance(self, rows: np.ndarray | slice, by: np.ndarray | int) -> None:
        self.at[rows] += by
        if np.any(self.at[rows] > self.end[rows]):
            raise Malformed("a field runs past the end of its record")

    def longs(self, rows: np.ndarray | slice) -> np.ndarray:
        """Zig-zag varints at the positions of ``rows``, as int64; the cursors move past them."""
        window = self.bytes[self.at[rows][:, None] + _WINDOW]
        last = window < 0x80
        if not np.all(last.any(axis=1)):
            raise Malformed("a varint longer than ten bytes")
        sizes = last.argmax(axis=1) + 1
        if np.any((sizes == _VARINT_BYTES) & (window[:, -1] > 1)):  # a tenth group past bit 63
            raise Malformed("a varint beyond 64 bits")
        groups = (window & 0x7F).astype(np.uint64) << _SHIFTS
        groups[_WINDOW[None, :] >= sizes[:, None]] = 0
        zigzag = np.bitwise_or.reduce(groups, axis=1)
        self.advance(rows, sizes)
        decoded: np.ndarray = (zigzag >> np.uint64(1)) ^ (np.uint64(0) - (zigzag & np.uint64(1)))
        return decoded.view(np.int64)


Reader = Callable[[_Cursor, np.ndarray | slice], list[Any]]


def _read_longs(cursor: _Cursor, rows: np.ndarray | slice) -> list[Any]:
    values: list[Any] = cursor.longs(rows).tolist()
    return values


def _read_doubles(cursor: _Cursor, rows: np.ndarray | slice) -> list[Any]:
    at = cursor.at[rows].copy()  # a slice is a view: the cursor moves next
    cursor.advance(rows, 8)
    raw = cursor.bytes[at[:, None] + _DOUBLE_BYTES]
    values: list[Any] = raw.view("<f8").ravel().tolist()
    return values


def _read_strings(cursor: _Cursor, rows: np.ndarray | slice) -> list[Any]:
    sizes = cursor.longs(rows)
    if np.any(sizes < 0):
        raise Malformed("a negative string length")
    starts = cursor.at[rows].copy()
    cursor.advance(rows, sizes)
    buffer = cursor.buffer
    try:
        return [
            buffer[start : start + size].decode()
            for start, size in zip(starts.tolist(), sizes.tolist(), strict=True)
        ]
    except UnicodeDecodeError as exc:
        raise Malformed(str(exc)) from None


def _optional(read: Reader) -> Reader:
    """The reader of ``["null", T]``: the branch index (0 null, 1 a value), then the value."""

    def read_optional(cursor: _Cursor, rows: np.ndarray | slice) -> list[Any]:
        branches = cursor.longs(rows)
        if np.any((branches != 0) & (branches != 1)):
            raise Malformed("a union branch that does not exist")
        indexes = np.arange(len(cursor.at))[rows]
        present = indexes[branches == 1]
        column: list[Any] = [None] * len(branches)
        if len(present):
            for i, value in zip(
                np.flatnonzero(branches == 1).tolist(), read(cursor, present), strict=True
            ):
                column[i] = value
        return column

    return read_optional


_PRIMITIVE_READERS: dict[str, Reader] = {
    "int": _read_longs,
    "long": _read_longs,
    "double": _read_doubles,
    "string": _read_strings,
}


def field_reader(field_type: Any) -> Reader:
    """The reader of a field's type; ValueError for a type this reader does not read."""
    return field_handler(field_type, _PRIMITIVE_READERS, _optional, "decode")


class ColumnReader:
    """Reads the Avro bodies of a batch of records of one flat record schema into columns.

    >>> from stream_app.codecs.avro_columns import ColumnEncoder
    >>> schema = {"type": "record", "name": "R", "fields": [
    ...     {"name": "id", "type": "string"}, {"name": "n", "type": ["null", "long"]}]}
    >>> ColumnReader(schema).read(ColumnEncoder(schema).encode({"id": ["a", "é"], "n": [None, -3]}))
    {'id': ['a', 'é'], 'n': [None, -3]}
    >>> ColumnReader(schema).read([b"\\x02a\\x00", b"\\x02a\\x00\\x00"]) is None  # trailing byte
    True
    """

    def __init__(self, schema: Schema) -> None:
        self._fields = record_fields(schema, field_reader, "decode")

    def read(self, bodies: Sequence[bytes | memoryview]) -> dict[str, list[Any]] | None:
        """Field name → one value per body, as fastavro reads them; None if any body is not a
        well-formed record of the schema."""
        if not bodies:
            return {name: [] for name, _ in self._fields}
        cursor = _Cursor(bodies)
        every = slice(None)
        try:
            columns = {name: read(cursor, every) for name, read in self._fields}
        except Malformed:
            return None
        if np.any(cursor.at != cursor.end):
            return None  # trailing bytes
        return columns
