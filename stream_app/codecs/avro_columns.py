"""Avro bodies of a whole batch of flat records, written column by column.

fastavro's ``schemaless_writer`` walks the schema once per record; on the hot path that is most
of the cost of the prediction records. A :class:`ColumnEncoder` is compiled once from a record
schema whose fields are ``int``, ``long``, ``double``, ``string`` or a union of ``null`` and one
of those, and writes every field for the whole batch at once: varints and doubles with numpy,
strings with one ``str.encode`` each, and a field given as one value for every row (model
version, worker id, ...) encoded once. The bytes are exactly fastavro's (the unit tests compare
them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from fastavro.types import Schema

Column = Sequence[Any] | np.ndarray
T = TypeVar("T")
#: the Avro binary of every value of one column, in order
ColumnWriter = Callable[[Column], list[bytes]]

_VARINT_BYTES = 10  # a zig-zag encoded 64-bit long takes at most 10 groups of 7 bits
_SHIFTS = np.arange(0, 7 * _VARINT_BYTES, 7, dtype=np.uint64)
_ONE_BYTE = tuple(bytes([value]) for value in range(0x80))
#: below this many values a column of longs is written by a Python loop: the numpy path costs a
#: dozen numpy calls whatever the size (~45 µs here), the loop ~1.5 µs per value
SMALL_LONGS = 32
_SHORT_LENGTH = tuple(bytes([size << 1]) for size in range(64))  # a string's length, zig-zag
_NULL_BRANCH, _VALUE_BRANCH = b"\x00", b"\x02"  # branch indexes 0 and 1 of ["null", T]


def write_longs(column: Column) -> list[bytes]:
    """Avro ``long`` (and ``int``): zig-zag, then little-endian base-128 varint.

    >>> write_longs([0, -1, 1, 64, 1_767_225_600_000])
    [b'\\x00', b'\\x01', b'\\x02', b'\\x80\\x01', b'\\x80\\xa0\\xd5\\xed\\xeef']
    """
    values = np.asarray(column)
    if values.size == 0:
        return []
    if values.dtype.kind != "i":
        raise TypeError(f"expected 64-bit integers, got an array of {values.dtype}")
    if values.size < SMALL_LONGS:
        return [_varint((value << 1) ^ (value >> 63)) for value in values.tolist()]
    values = values.astype(np.int64, copy=False)
    zigzag = ((values << 1) ^ (values >> 63)).view(np.uint64)
    if zigzag.max() < 0x80:  # one byte each: string lengths, partitions, small counts
        return [_ONE_BYTE[value] for value in zigzag.tolist()]
    shifted = zigzag[:, None] >> _SHIFTS
    more = shifted[:, 1:] != 0  # a group is followed by another while higher bits remain
    sizes = 1 + more.sum(axis=1)
    groups = (shifted & 0x7F).astype(np.uint8)
    groups[:, :-1] |= more.view(np.uint8) << 7  # continuation bits
    raw = groups.tobytes()
    return [
        raw[start : start + size]
        for start, size in zip(range(0, len(raw), _VARINT_BYTES), sizes.tolist(), strict=True)
    ]


def _varint(zigzag: int) -> bytes:
    """The base-128 varint of a zig-zag encoded long (a non-negative int below 2**64).

    >>> _varint(0), _varint(128), _varint(2**64 - 1) == b"\\xff" * 9 + b"\\x01"
    (b'\\x00', b'\\x80\\x01', True)
    """
    if zigzag < 0x80:
        return _ONE_BYTE[zigzag]
    groups = bytearray()
    while zigzag >= 0x80:
        groups.append(zigzag & 0x7F | 0x80)
        zigzag >>= 7
    groups.append(zigzag)
    return bytes(groups)


def write_doubles(column: Column) -> list[bytes]:
    """Avro ``double``: 8 bytes, IEEE 754 little-endian.

    >>> write_doubles([1.0, -0.5])
    [b'\\x00\\x00\\x00\\x00\\x00\\x00\\xf0?', b'\\x00\\x00\\x00\\x00\\x00\\x00\\xe0\\xbf']
    """
    values = np.asarray(column)
    if values.size and values.dtype.kind not in "fi":
        raise TypeError(f"expected numbers, got an array of {values.dtype}")
    raw = values.astype("<f8").tobytes()
    return [raw[start : start + 8] for start in range(0, len(raw), 8)]


def write_strings(column: Column) -> list[bytes]:
    """Avro ``string``: the UTF-8 byte length as a ``long``, then the bytes.

    >>> write_strings(["ab", "é"])
    [b'\\x04ab', b'\\x04\\xc3\\xa9']
    """
    written = []
    for value in column:
        data = str.encode(value)
        size = len(data)
        # a length below 64 is one varint byte: a table lookup, no numpy call at any batch size
        written.append((_SHORT_LENGTH[size] if size < 64 else _varint(size << 1)) + data)
    return written


def optional(write: ColumnWriter) -> ColumnWriter:
    """The writer of the union ``["null", T]`` from the writer of ``T``: the branch index as a
    ``long`` (0 for null, 1 for a value), then the value."""

    def write_optional(column: Column) -> list[bytes]:
        present = [value for value in column if value is not None]
        values = iter(write(present))
        return [_NULL_BRANCH if value is None else _VALUE_BRANCH + next(values) for value in column]

    return write_optional


_PRIMITIVE_WRITERS: Mapping[str, ColumnWriter] = {
    "int": write_longs,
    "long": write_longs,
    "double": write_doubles,
    "string": write_strings,
}


def field_writer(field_type: Any) -> ColumnWriter:
    """The writer of a field's type; ValueError for a type this encoder does not write.

    >>> field_writer(["null", "string"])([None, "a"])
    [b'\\x00', b'\\x02\\x02a']
    >>> field_writer({"type": "array", "items": "string"})
    Traceback (most recent call last):
    ...
    ValueError: cannot encode column-wise: {'type': 'array', 'items': 'string'}
    """
    return field_handler(field_type, _PRIMITIVE_WRITERS, optional, "encode")


def field_handler(
    field_type: Any, primitives: Mapping[str, T], optional: Callable[[T], T], what: str
) -> T:
    """The handler (a column writer or reader) of a field's type: a primitive's own, or for the
    union ``["null", T]`` ``optional`` of T's; ValueError for any other type."""
    if isinstance(field_type, str) and field_type in primitives:
        return primitives[field_type]
    if isinstance(field_type, list) and len(field_type) == 2 and field_type[0] == "null":
        return optional(field_handler(field_type[1], primitives, optional, what))
    raise ValueError(f"cannot {what} column-wise: {field_type}")


def record_fields(schema: Schema, handler: Callable[[Any], T], what: str) -> list[tuple[str, T]]:
    """Each field of a record schema with its handler; ValueError if the schema is no record."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError(f"cannot {what} column-wise: {schema}, not a record")
    return [(field["name"], handler(field["type"])) for field in schema["fields"]]


class ColumnEncoder:
    """Writes the Avro bodies of a batch of records of one flat record schema, given as columns.

    >>> encoder = ColumnEncoder({"type": "record", "name": "R", "fields": [
    ...     {"name": "id", "type": "string"}, {"name": "n", "type": ["null", "long"]}]})
    >>> encoder.encode({"id": ["a", "b"], "n": [None, -3]})
    [b'\\x02a\\x00', b'\\x02b\\x02\\x05']
    >>> encoder.encode({"id": ["a", "b"]}, constants={"n": 1})
    [b'\\x02a\\x02\\x02', b'\\x02b\\x02\\x02']
    """

    def __init__(self, schema: Schema) -> None:
        self._fields = record_fields(schema, field_writer, "encode")
        self._constants: dict[str, tuple[Any, bytes]] = {}  # field → its last constant, encoded

    def encode(
        self,
        columns: Mapping[str, Column],
        prefix: bytes = b"",
        constants: Mapping[str, Any] | None = None,
    ) -> list[bytes]:
        """``prefix`` followed by the body of each row. Each field of the schema is either in
        ``columns`` (a sequence or 1-d array, all as long) or in ``constants`` (one value for every
        row, encoded once); a field in neither, columns of unequal length or a value of the wrong
        type raise KeyError, ValueError or TypeError.
        """
        constants = constants or {}
        rows = {len(columns[name]) for name, _ in self._fields if name not in constants}
        if len(rows) > 1:
            raise ValueError(f"columns of unequal lengths {sorted(rows)}")
        count = rows.pop() if rows else 0
        if count == 0:
            return []
        written = self._longs_together(columns, constants, count)
        pieces = [[prefix] * count]
        for name, write in self._fields:
            if name in constants:
                pieces.append([self._constant(name, write, constants[name])] * count)
            elif name in written:
                pieces.append(written[name])
            else:
                pieces.append(write(columns[name]))
        return [b"".join(row) for row in zip(*pieces, strict=True)]

    def _longs_together(
        self, columns: Mapping[str, Column], constants: Mapping[str, Any], count: int
    ) -> dict[str, list[bytes]]:
        """The ``long`` and ``int`` columns written in one :func:`write_longs` call (a few
        numpy calls of fixed cost each, paid once per batch, not once per column); none when
        fewer than two, or when one is not integers (its own call then raises)."""
        names = [n for n, write in self._fields if write is write_longs and n not in constants]
        arrays = [np.asarray(columns[name]) for name in names]
        if len(arrays) < 2 or any(array.dtype.kind != "i" for array in arrays):
            return {}
        values = write_longs(np.concatenate(arrays))
        return {name: values[i * count : (i + 1) * count] for i, name in enumerate(names)}

    def _constant(self, name: str, write: ColumnWriter, value: Any) -> bytes:
        """A constant field's bytes, encoded again unless it is the very object of the last
        batch (the model version and the worker id are; identity, as 0.0 == -0.0)."""
        cached = self._constants.get(name)
        if cached is None or cached[0] is not value:
            cached = self._constants[name] = (value, write([value])[0])
        return cached[1]
