"""Read-only SQL: the engine enforces it (``readonly=1``), this module only carries queries.

With chDB the sink owns the data directory, so it serves :class:`ReadOnlySql` over HTTP on
loopback (:mod:`stream_app.warehouse.web`); :func:`run_query` uses that endpoint when it answers
and opens the warehouse itself (read-only) otherwise.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client

from stream_app.errors import WarehouseError
from stream_app.settings import Settings
from stream_app.warehouse.client import connect

_OUTFILE = re.compile(r"^INTO OUTFILE ", re.MULTILINE)
FORMATS = {"table": "JSONCompact", "json": "JSONEachRow", "csv": "CSVWithNames"}
#: this module's own refusal (every other refusal is the engine's message)
OUTFILE_REFUSED = "INTO OUTFILE writes files on the server: refused on read-only SQL"
MAX_QUERY_BYTES = 1_000_000


class ReadOnlySql:
    """Runs queries on a ``readonly=1`` session of the warehouse, one at a time.

    After a failed query the session is replaced: chDB keeps the output of the statements of a
    multi-statement input that ran before the refused one, and would prepend it to the next
    result (seen with chDB 4.4: ``SELECT 1; DROP ...`` then ``SELECT count()`` gave ``1\\n<n>``).
    """

    def __init__(self, open_client: Callable[[], Client]) -> None:
        self._open_client = open_client
        self._client = open_client()
        self._lock = threading.Lock()

    def run(self, query: str, clickhouse_format: str) -> bytes:
        """The result in a ClickHouse format, or ``WarehouseError`` with the engine's text."""
        with self._lock:
            self._refuse_what_readonly_lets_through(query)
            try:
                result: bytes = self._client.raw_query(query, fmt=clickhouse_format)
            except Exception as exc:  # driver errors carry ClickHouse's own message
                self._client = self._open_client()
                if "SYNTAX_ERROR" not in str(exc):
                    raise WarehouseError(str(exc).strip()) from None
                # Statements without a result set (SYSTEM, SET, ...) reject the FORMAT clause
                # the driver appends: send them as they are, so the engine answers for itself.
                return self._command(query)
        return result

    def _refuse_what_readonly_lets_through(self, query: str) -> None:
        """Two gaps of ``readonly=1`` in chDB, closed with the engine's own parser.

        chDB runs every statement of a multi-statement input, and ``SELECT ... INTO OUTFILE``
        writes files despite ``readonly=1`` (chDB 4.4). ``formatQuery`` parses the text as
        ClickHouse does: it refuses multi-statements with its own error, and its canonical form
        puts a real ``INTO OUTFILE`` clause at the start of a line (a string literal never does).
        """
        try:
            canonical = self._client.query(
                "SELECT formatQuery({q:String})", parameters={"q": query}
            ).result_rows[0][0]
        except Exception as exc:
            self._client = self._open_client()
            raise WarehouseError(str(exc).strip()) from None
        if _OUTFILE.search(canonical):
            raise WarehouseError(OUTFILE_REFUSED)

    def _command(self, query: str) -> bytes:
        try:
            return f"{self._client.command(query)}\n".encode()
        except Exception as exc:
            self._client = self._open_client()
            raise WarehouseError(str(exc).strip()) from None


def run_query(
    settings: Settings, query: str, clickhouse_format: str, timeout_s: float = 60.0
) -> bytes:
    """Run ``query`` read-only: through the sink's endpoint if it answers, else directly."""
    if settings.embedded_warehouse:
        request = urllib.request.Request(  # noqa: S310  # http on loopback, from settings
            f"{settings.sql_url}/query?format={clickhouse_format}",
            data=query.encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            raise WarehouseError(exc.read().decode(errors="replace")) from None
        except urllib.error.URLError:
            pass  # no sink running: open the warehouse ourselves
    return ReadOnlySql(lambda: connect(settings, readonly=True)).run(query, clickhouse_format)


def query_rows(settings: Settings, query: str) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of a read-only query."""
    document = json.loads(run_query(settings, query, FORMATS["table"]))
    return [c["name"] for c in document["meta"]], document["data"]
