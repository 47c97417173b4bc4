"""``POST /query?format=F``: read-only SQL over HTTP, several queries at once, none held behind
another, a bounded backlog, and an optional bearer token (docs/sql-endpoint.md)."""

from __future__ import annotations

import asyncio
import hmac
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from pydantic import SecretStr

from stream_app.errors import WarehouseError
from stream_app.settings import Settings
from stream_app.warehouse.sql import FORMATS, ReadOnlySql


class QueryEndpoint:
    """Runs up to ``max_concurrent`` queries at once in threads of its own, each on its own
    read-only session; up to ``max_waiting`` more wait for a thread, and beyond that a query is
    answered 503 at once. Only the event loop's thread counts the admitted queries."""

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
        if not self._authorised(request):
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
        if self._admitted >= self._capacity:
            return web.Response(
                status=503, text="too many queries: retry later", headers={"Retry-After": "1"}
            )
        self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(self._executor, self.sql.run, query, fmt)
        except WarehouseError as exc:
            return web.Response(status=400, text=str(exc))
        finally:
            self._admitted -= 1
        if len(body) > self._max_result_bytes:
            return web.Response(
                status=400, text=f"the answer is over {self._max_result_bytes} bytes: refused"
            )
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    def close(self) -> None:
        """Queries not yet started are dropped; running ones end within their time limit."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _authorised(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        expected = f"Bearer {self._token.get_secret_value()}".encode()
        return hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected)
