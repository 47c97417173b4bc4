"""The sink's web server: the health routes of :class:`~stream_app.health_web.HealthWeb` and,
with the embedded warehouse, ``POST /query?format=F`` with the SQL as body and ClickHouse's HTTP
interface (``/``, ``/ping``: :mod:`stream_app.warehouse.clickhouse_http`).

Queries run in threads of :class:`~stream_app.warehouse.endpoint.QueryEndpoint`, never on the
loop itself.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from stream_app.health_web import HealthWeb
from stream_app.warehouse.clickhouse_http import ClickHouseHttp
from stream_app.warehouse.endpoint import QueryEndpoint


class SinkWeb(HealthWeb):
    """:class:`HealthWeb` with the SQL endpoint; ``sql`` is None when the warehouse is a
    ClickHouse server (query it directly)."""

    def __init__(self, *args: Any, sql: QueryEndpoint | None = None, **kwargs: Any) -> None:
        """``args`` and ``kwargs``: :class:`HealthWeb`'s."""
        super().__init__(*args, **kwargs)
        self._sql = sql

    def application(self) -> web.Application:
        if self._sql is None:
            return web.Application()
        # larger bodies: 413, by aiohttp (a bad Content-Length: 400)
        app = web.Application(client_max_size=self._sql.max_query_bytes)
        app.router.add_post("/query", self._sql.post_query)
        ClickHouseHttp(self._sql).add_routes(app)
        return app

    async def on_stop(self) -> None:
        await super().on_stop()
        if self._sql is not None:
            self._sql.close()
