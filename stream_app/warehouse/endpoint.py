"""Read-only SQL over HTTP: several queries at once, none held behind another, a bounded backlog
and an optional token (docs/sql-endpoint.md). ``POST /query?format=F`` is served here; ClickHouse's
own HTTP interface, by :mod:`stream_app.warehouse.clickhouse_http` on the same queries."""

from __future__ import annotations

import asyncio
import hmac
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from aiohttp import BasicAuth, web
from pydantic import SecretStr

from stream_app.errors import WarehouseError
from stream_app.settings import Settings
from stream_app.warehouse.sql import FORMATS, Answer, Question, ReadOnlySql

#: the code and name of an engine's message, ``Code: 164. DB::Exception: ... (READONLY)``
_ENGINE_ERROR = re.compile(r"^Code: (\d+)\..*\(([A-Z_]+)\)", re.DOTALL)


@dataclass(frozen=True)
class Refusal:
    """A query not answered: the HTTP status of ``POST /query``, ClickHouse's error code and name
    for it, and the reason (the engine's own message, or the endpoint's). The endpoint's own
    refusals of a statement are ClickHouse's ``READONLY``."""

    status: int
    code: int
    name: str
    reason: str

    @classmethod
    def of(cls, exc: WarehouseError) -> Refusal:
        reason = str(exc)
        engine = _ENGINE_ERROR.match(reason)
        if engine is None:
            return cls(400, 164, "READONLY", reason)
        return cls(400, int(engine[1]), engine[2], reason)


BUSY = Refusal(503, 202, "TOO_MANY_SIMULTANEOUS_QUERIES", "too many queries: retry later")


class QueryEndpoint:
    """Runs up to ``max_concurrent`` queries at once in threads of its own, each on its own
    read-only session; up to ``max_waiting`` more wait for a thread, and beyond that a query is
    refused at once. Only the event loop's thread counts the admitted queries."""

    def __init__(
        self,
        sql: ReadOnlySql,
        max_concurrent: int,
        max_waiting: int,
        max_query_bytes: int,
        max_result_bytes: int,
        token: SecretStr | None = None,
    ) -> None:
        self.sql, self.max_query_bytes, self._token = sql, max_query_bytes, token
        self._max_result_bytes = max_result_bytes
        self._capacity = max_concurrent + max_waiting
        self._admitted = 0
        self._executor = ThreadPoolExecutor(max_concurrent, thread_name_prefix="sql-query")

    @classmethod
    def from_settings(cls, settings: Settings, sql: ReadOnlySql) -> QueryEndpoint:
        return cls(
            sql,
            settings.sql_max_concurrent,
            settings.sql_max_waiting,
            settings.sql_max_query_bytes,
            settings.sql_max_result_mb * 2**20,
            settings.sql_token,
        )

    async def post_query(self, request: web.Request) -> web.Response:
        if not self.authorised(request):
            return web.Response(
                status=401,
                text="a bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        fmt = request.query.get("format", FORMATS["table"])
        if fmt not in FORMATS.values():
            return web.Response(
                status=400, text=f"format must be one of {sorted(FORMATS.values())}"
            )
        # the body before a place: a client that never sends its body holds none
        query = await request.text()  # 413 beyond the application's client_max_size
        answer = await self.answer(Question(query, fmt, format_clause=False))
        if isinstance(answer, Refusal):
            retry = {"Retry-After": "1"} if answer is BUSY else None
            return web.Response(status=answer.status, text=answer.reason, headers=retry)
        return web.Response(body=answer.body, content_type="text/plain", charset="utf-8")

    async def answer(self, question: Question) -> Answer | Refusal:
        """:meth:`ReadOnlySql.answer` in a thread of the endpoint, if one is free or a place to
        wait for one; an answer over the size limit is refused."""
        if self._admitted >= self._capacity:
            return BUSY
        self._admitted += 1
        run = partial(self.sql.answer, question)
        try:
            answer = await asyncio.get_running_loop().run_in_executor(self._executor, run)
        except WarehouseError as exc:
            return Refusal.of(exc)
        finally:
            self._admitted -= 1
        if len(answer.body) > self._max_result_bytes:
            reason = f"the answer is over {self._max_result_bytes} bytes: refused"
            return Refusal(400, 396, "TOO_MANY_ROWS_OR_BYTES", reason)
        return answer

    def close(self) -> None:
        """Queries not yet started are dropped; running ones end within their time limit."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def authorised(self, request: web.Request) -> bool:
        """Whether ``request`` carries the token (if one is set): as a bearer token, as the
        password of HTTP basic authentication or ClickHouse's ``X-ClickHouse-Key`` header."""
        if self._token is None:
            return True
        expected = self._token.get_secret_value().encode()
        return hmac.compare_digest(_presented_secret(request).encode(), expected)


def _presented_secret(request: web.Request) -> str:
    """The token a request carries, in any of the ways :meth:`QueryEndpoint.authorised` reads."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ")
    if header.startswith("Basic "):
        try:
            return str(BasicAuth.decode(header).password)
        except ValueError:  # not base64, or no colon: no password
            return ""
    return request.headers.get("X-ClickHouse-Key", "")
