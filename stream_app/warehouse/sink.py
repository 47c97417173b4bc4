"""A sink writing rows of one warehouse table through clickhouse-connect."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, Error

from stream_app.errors import RowsRefused, WarehouseUnavailable
from stream_app.sinks.base import BatchingSink, Row
from stream_app.timing import now_ms
from stream_app.warehouse.schema import REJECTED_ROWS, Table

log = logging.getLogger(__name__)

#: ClickHouse error codes that say the rows themselves are at fault (a retry cannot help):
#: unparsable or out-of-range values, type mismatches, violated constraints
REFUSED_CODES = frozenset({6, 27, 38, 41, 53, 69, 70, 72, 117, 321, 407, 469})
_TOO_MANY_PARTITIONS = re.compile(r"Too many partitions for single INSERT block")


def refuses_rows(error: Exception) -> bool:
    """True when the warehouse refused the rows for what they hold, not for its own state."""
    if isinstance(error, DatabaseError) and error.code is not None:
        return error.code in REFUSED_CODES or bool(_TOO_MANY_PARTITIONS.search(str(error)))
    # the driver could not serialise a value for its column
    return isinstance(error, DataError | TypeError | ValueError | OverflowError)


class ClickHouseSink(BatchingSink):
    """Inserts into ``database.<table>_raw``, one INSERT per partition block of a flush. With
    ``count_by`` (a column and a dict), the rows written are also counted into the dict by their
    value of that column: a per-row cost paid only by the tables that ask for it."""

    def __init__(
        self,
        client: Client,
        database: str,
        table: Table,
        count_by: tuple[str, dict[str, int]] | None = None,
    ) -> None:
        super().__init__()
        self._client = client
        self._database = database
        self.table = table
        self._count_by = count_by and (table.column_names.index(count_by[0]), count_by[1])

    def write(self, rows: list[Row]) -> None:
        for block in self.table.insert_blocks(rows):
            self._insert(self.table, block)
        if self._count_by:
            at, counted = self._count_by
            for value, n in Counter(str(row[at]) for row in rows).items():
                counted[value] = counted.get(value, 0) + n

    def close(self) -> None:
        """The client closed: an embedded warehouse's directory is free for another session once
        every client on it is (chDB opens one directory per process at a time)."""
        self._client.close()

    def park(self, row: Row, refusal: RowsRefused) -> None:
        log.warning("%s: row refused by the warehouse, parked in %s: %s",
                    self.table.view, REJECTED_ROWS.view, refusal)  # fmt: skip
        parked = (self.table.view, str(refusal), json.dumps(list(row), default=str), now_ms())
        self._insert(REJECTED_ROWS, [parked])

    def _insert(self, table: Table, rows: Sequence[Row]) -> None:
        try:
            # the types given: without them the client asks the engine for them before each insert
            self._client.insert(
                table.raw,
                rows,
                column_names=table.column_names,
                column_type_names=table.column_types,
                database=self._database,
            )
        except (Error, TypeError, ValueError, OverflowError) as exc:
            if refuses_rows(exc):
                raise RowsRefused(str(exc).strip()) from exc
            raise WarehouseUnavailable(f"{table.raw}: {str(exc).strip()}") from exc
