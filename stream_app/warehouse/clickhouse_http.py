"""ClickHouse's own HTTP interface over the read-only endpoint, for ClickHouse clients
(clickhouse-connect, Grafana's ClickHouse plugin, DBeaver): docs/sql-clients.md.

``GET /?query=`` and ``POST /`` (the query in the URL, the body or both, joined by a line),
``database``, ``default_format`` or a ``FORMAT`` clause, settings as URL parameters (the engine
refuses any that changes a value: the sessions are ``readonly=1``), ``GET /ping``. Answers carry
the headers clients read (``X-ClickHouse-Format``, ``-Summary``, ``-Query-Id``); a refusal
carries ClickHouse's error text and ``X-ClickHouse-Exception-Code``.
"""

from __future__ import annotations

import json
import time
import uuid

from aiohttp import web
from multidict import MultiMapping

from stream_app.warehouse.endpoint import BUSY, QueryEndpoint, Refusal
from stream_app.warehouse.sql import Question

OK = "Ok.\n"
DEFAULT_FORMAT = "TabSeparated"
#: URL parameters of the interface itself, not settings; the credentials are read by
#: :meth:`QueryEndpoint.authorised`; sessions are accepted but each query is on its own
TRANSPORT = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "query_id",
        "quota_key",
        "session_id",
        "session_timeout",
        "session_check",
        "close_session",
        "client_protocol_version",
        "wait_end_of_query",
        "buffer_size",
        "stacktrace",
        "role",
    }
)
#: settings of the HTTP layer, which this module plays: no progress headers (the answer comes
#: whole), compression by aiohttp
HTTP_SETTINGS = frozenset(
    {
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close",
        "enable_http_compression",
        "http_zlib_compression_level",
    }
)
#: a client's own timeout, which clickhouse-go (Grafana's plugin) sends with every query: dropped,
#: the endpoint's ``sql_max_execution_s`` stops the query (``readonly=1`` would refuse it)
CLIENT_TIMEOUT = "max_execution_time"
NOT_SETTINGS = TRANSPORT | HTTP_SETTINGS | {CLIENT_TIMEOUT}
#: parameters asking for what cannot be served: ClickHouse's compressed blocks (in or out), and
#: server-side query parameters (chDB does not keep them apart between sessions running at once)
UNSERVED = {
    "compress": "ClickHouse's compressed blocks are not served: set compress=0 "
    "(HTTP compression works)",
    "decompress": "compressed request bodies are not served: set decompress=0",
}
PARAMETERS = "server-side query parameters (param_*) are not served: bind them in the client"
#: HTTP status of ClickHouse's errors by code, as its ``exceptionCodeToHTTPStatus`` maps them
#: (others: 500), but TOO_MANY_SIMULTANEOUS_QUERIES (202): 503 and Retry-After, which clients retry
STATUS = {
    **{62: 400, 516: 403, 159: 408, 48: 501, 202: 503},
    **dict.fromkeys((46, 47, 60, 73, 81, 115), 404),  # UNKNOWN_FUNCTION ... UNKNOWN_SETTING
}
OFF = ("0", "false")
BINARY = ("Native", "RowBinary", "Arrow", "Parquet", "ORC", "Avro", "MsgPack", "Protobuf")


class ClickHouseHttp:
    """Routes of ClickHouse's HTTP interface, answered by ``endpoint``."""

    def __init__(self, endpoint: QueryEndpoint) -> None:
        self._endpoint = endpoint

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ping", self.ping)
        app.router.add_get("/", self.query)
        app.router.add_post("/", self.query)

    async def ping(self, _request: web.Request) -> web.Response:
        return web.Response(text=OK)

    async def query(self, request: web.Request) -> web.Response:
        if not self._endpoint.authorised(request):
            return _refused(Refusal(403, 516, "AUTHENTICATION_FAILED", "a wrong or missing token"))
        params = request.query
        body = await request.text() if request.can_read_body else ""
        query = "\n".join(part for part in (params.get("query", ""), body) if part)
        if not query:
            return web.Response(text=OK)
        unserved = _unserved(params)
        if unserved is not None:
            return _refused(Refusal(501, 48, "NOT_IMPLEMENTED", unserved))
        started = time.perf_counter_ns()
        answer = await self._endpoint.answer(
            Question(
                query,
                params.get("default_format", DEFAULT_FORMAT),
                params.get("database"),
                {k: v for k, v in params.items() if k not in NOT_SETTINGS},
            )
        )
        if isinstance(answer, Refusal):
            return _refused(answer)
        summary = {
            "elapsed_ns": str(time.perf_counter_ns() - started),
            "result_bytes": str(len(answer.body)),
        }
        response = web.Response(
            body=answer.body,
            headers={
                "Content-Type": _content_type(answer.format),
                "X-ClickHouse-Format": answer.format,
                "X-ClickHouse-Query-Id": params.get("query_id") or str(uuid.uuid4()),
                "X-ClickHouse-Summary": json.dumps(summary),
            },
        )
        if params.get("enable_http_compression") == "1":
            response.enable_compression()
        return response


def _unserved(params: MultiMapping[str]) -> str | None:
    for name, reason in UNSERVED.items():
        if params.get(name, "0").lower() not in OFF:
            return reason
    if any(name.startswith("param_") for name in params):
        return PARAMETERS
    return None


def _refused(refusal: Refusal) -> web.Response:
    """ClickHouse's error shape: ``Code: N. DB::Exception: reason. (NAME)``, as the engine words
    its own."""
    text = refusal.reason
    if not text.startswith("Code: "):
        text = f"Code: {refusal.code}. DB::Exception: {text}. ({refusal.name})"
    headers = {"X-ClickHouse-Exception-Code": str(refusal.code)}
    if refusal is BUSY:
        headers["Retry-After"] = "1"
    return web.Response(status=STATUS.get(refusal.code, 500), text=text + "\n", headers=headers)


def _content_type(clickhouse_format: str) -> str:
    """The media type ClickHouse gives an answer in ``clickhouse_format``.

    >>> _content_type("JSONEachRow"), _content_type("Parquet"), _content_type("CSVWithNames")
    ('application/json; charset=UTF-8', 'application/octet-stream', 'text/csv; charset=UTF-8')
    """
    if clickhouse_format.startswith(BINARY):
        return "application/octet-stream"
    if clickhouse_format.startswith("JSON"):
        return "application/json; charset=UTF-8"
    if clickhouse_format.startswith("CSV"):
        return "text/csv; charset=UTF-8"
    if clickhouse_format.startswith(("TabSeparated", "TSV")):
        return "text/tab-separated-values; charset=UTF-8"
    return "text/plain; charset=UTF-8"
