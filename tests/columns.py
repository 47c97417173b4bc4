"""Columns decoded for a whole poll, compared with the records decoded one by one."""

from __future__ import annotations

import struct
from typing import Any


def comparable(value: Any) -> Any:
    """Floats by their bits (NaN equals NaN, -0.0 differs from 0.0), the rest as is."""
    return struct.pack("<d", value) if isinstance(value, float) else value


def comparable_record(record: dict[str, Any]) -> dict[str, Any]:
    return {name: comparable(value) for name, value in record.items()}


def by_record(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The records of decoded columns, each value :func:`comparable`."""
    rows = zip(*columns.values(), strict=True)
    return [comparable_record(dict(zip(columns, row, strict=True))) for row in rows]
