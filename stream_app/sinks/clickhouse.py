"""A sink writing rows of one warehouse table through clickhouse-connect."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from stream_app.sinks.base import BatchingSink, Row
from stream_app.warehouse.schema import Table


class ClickHouseSink(BatchingSink):
    """Inserts into ``database.<table>_raw``, one INSERT per flush."""

    def __init__(self, client: Client, database: str, table: Table) -> None:
        super().__init__()
        self._client = client
        self._database = database
        self.table = table

    def write(self, rows: list[Row]) -> None:
        self._client.insert(
            self.table.raw, rows, column_names=self.table.column_names, database=self._database
        )
