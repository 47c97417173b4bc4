"""Read-only SQL: the engine enforces it (``readonly=1``), this module only carries queries.

With chDB the sink owns the data directory, so it serves :class:`ReadOnlySql` over HTTP on
loopback (:mod:`stream_app.warehouse.web`); :func:`run_query` uses that endpoint. When it does
not answer, only a caller that says so opens the warehouse itself (read-only): a one-shot
command run against a stopped stack, or a process that already holds the warehouse. A
long-running reader that opened it would keep the sink from starting again (one process per
chDB directory): it gets :class:`~stream_app.errors.WarehouseUnavailable` and asks again later.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseError

from stream_app.errors import WarehouseError, WarehouseUnavailable
from stream_app.settings import Settings
from stream_app.warehouse.client import connect
from stream_app.warehouse.statements import output_format, refusal

FORMATS = {
    "table": "JSONCompact",
    "json": "JSONEachRow",
    "csv": "CSVWithNames",
    "arrow": "ArrowStream",  # columnar, for retraining
}
NO_FORMAT_CLAUSE = "a FORMAT clause: the endpoint answers in the ?format= asked for"
#: how the engine's parser error names the query that asked it to parse (cut from the message)
_PARSER_SCOPE = ": In scope SELECT formatQuery("


@dataclass(frozen=True)
class Question:
    """A query and how to answer it: in the format its ``FORMAT`` clause names (refused unless
    ``format_clause``), else in ``default_format``; in ``database`` (else the sessions' own); with
    ``settings`` (the engine refuses any that changes a value: the sessions are ``readonly=1``)."""

    query: str
    default_format: str
    database: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)
    format_clause: bool = True


@dataclass(frozen=True)
class Answer:
    """A result: its bytes and the ClickHouse format they are in."""

    body: bytes
    format: str


class ReadOnlySql:
    """Runs statements that :func:`~stream_app.warehouse.statements.refusal` allows on
    ``readonly=1`` sessions of the warehouse, one session per query running at once.

    A session is opened when every open one is busy and kept for the next query; the caller
    bounds how many run at once. After a failed query the session is dropped: chDB keeps the
    output of the statements of a multi-statement input that ran before the refused one, and
    would prepend it to the next result (seen with chDB 4.4).
    """

    def __init__(self, open_client: Callable[[], Client]) -> None:
        self._open_client = open_client
        self._idle = [open_client()]
        self._database = self._idle[0].database
        self._lock = threading.Lock()

    def run(self, query: str, clickhouse_format: str) -> bytes:
        """The result in ``clickhouse_format``, or ``WarehouseError`` with the reason it has none:
        the engine's own message, or this module's refusal (a ``FORMAT`` clause among them)."""
        return self.answer(Question(query, clickhouse_format, format_clause=False)).body

    def close(self) -> None:
        """Close the idle sessions (a running query's session is closed by nobody: call this
        once no query runs)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            client.close()

    def answer(self, question: Question) -> Answer:
        """The result :class:`Question` asks for, or ``WarehouseError`` as :meth:`run`."""
        with self._lock:
            client = self._idle.pop() if self._idle else None
        client = client or self._open_client()
        try:
            statement, clause = _allowed_statement(client, question.query)
            if clause is not None and not question.format_clause:
                raise WarehouseError(NO_FORMAT_CLAUSE)
            client.database = question.database or self._database
            body: bytes = client.raw_query(
                statement,
                fmt=None if clause else question.default_format,
                settings=dict(question.settings),
            )
        except Exception as exc:  # driver errors carry ClickHouse's own message
            client.close()  # dropped (see the class's docstring)
            raise WarehouseError(_without_parser_scope(str(exc).strip())) from None
        with self._lock:
            self._idle.append(client)
        return Answer(body, clause or question.default_format)


def _allowed_statement(client: Client, query: str) -> tuple[str, str | None]:
    """``query`` in the engine's canonical form, what runs, if its parse tree is allowed, and the
    format its ``FORMAT`` clause names (None without one).

    ``formatQuery`` refuses syntax errors and multi-statement input (chDB would run every
    statement of one); its output, a single statement, is then parsed again for ``EXPLAIN AST``.
    """
    canonical: str = client.query("SELECT formatQuery(%(q)s)", parameters={"q": query}).result_rows[
        0
    ][0]
    ast = str(client.command(f"EXPLAIN AST {canonical}"))
    reason = refusal(ast)
    if reason is not None:
        raise WarehouseError(reason)
    return canonical, output_format(ast)


def _without_parser_scope(message: str) -> str:
    """The engine's message without the ``formatQuery`` call that carried the user's text.

    >>> _without_parser_scope("Code: 62. Syntax error: x. : In scope SELECT formatQuery('x'). (E)")
    'Code: 62. Syntax error: x. (E)'
    """
    head, scope, tail = message.partition(_PARSER_SCOPE)
    return f"{head.rstrip()} {tail.rsplit(' ', 1)[-1]}" if scope else message


def literal(value: str) -> str:
    r"""``value`` as a ClickHouse string literal (backslashes and quotes escaped).

    >>> print(literal("it's a \\ path"))
    'it\'s a \\ path'
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_query(
    settings: Settings,
    query: str,
    clickhouse_format: str,
    timeout_s: float = 60.0,
    *,
    open_locally: bool = False,
) -> bytes:
    """Run ``query`` read-only. With chDB through the sink's endpoint; when it does not answer,
    ``WarehouseUnavailable``, or with ``open_locally`` the warehouse opened in this process."""
    if settings.embedded_warehouse:
        request = urllib.request.Request(  # noqa: S310  # http on loopback, from settings
            f"{settings.sql_url}/query?format={clickhouse_format}",
            data=query.encode(),
            method="POST",
        )
        if settings.sql_token is not None:
            request.add_header("Authorization", f"Bearer {settings.sql_token.get_secret_value()}")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            raise WarehouseError(exc.read().decode(errors="replace")) from None
        except OSError as exc:  # URLError (refused, unreachable), a timeout, a reset
            if not open_locally:
                why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                raise WarehouseUnavailable(
                    f"the sink's SQL endpoint {settings.sql_url} does not answer: {why}"
                ) from None
    local = ReadOnlySql(lambda: connect(settings, readonly=True))
    try:
        return local.run(query, clickhouse_format)
    finally:
        local.close()  # the directory free again for a sink or another warehouse (client.py)


def query_rows(
    settings: Settings, query: str, *, open_locally: bool = False, timeout_s: float = 60.0
) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of a read-only query (``open_locally``, ``timeout_s``: as
    :func:`run_query`)."""
    body = run_query(settings, query, FORMATS["table"], timeout_s, open_locally=open_locally)
    document = json.loads(body)
    return [c["name"] for c in document["meta"]], document["data"]


def unanswered(settings: Settings, timeout_s: float) -> str | None:
    """None when read-only SQL answers (the sink's endpoint's ``/ping`` with the embedded
    warehouse, else the server, ``SELECT 1``), else why not. Never opens the warehouse itself."""
    try:
        if settings.embedded_warehouse:
            url = f"{settings.sql_url}/ping"
            with urllib.request.urlopen(url, timeout=timeout_s):  # noqa: S310  # from settings
                return None
        run_query(settings, "SELECT 1", FORMATS["table"], timeout_s)
    except (OSError, WarehouseError, ClickHouseError) as exc:  # URLError is an OSError
        return str(exc)
    return None
