"""Open clickhouse-connect clients for the configured warehouse: chDB (embedded) or a server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from stream_app.errors import WarehouseError
from stream_app.settings import Settings

CHDB_SCHEME = "chdb://"
#: a password given as a parameter of the DSN's query string
_QUERY_PASSWORD = re.compile(r"([?&](?:password|access_token)=)[^&#]*", re.IGNORECASE)


def chdb_directory(dsn: str) -> Path:
    """The data directory of a ``chdb://`` DSN, relative paths resolved against the cwd.

    >>> chdb_directory("chdb:///var/lib/wh").as_posix()
    '/var/lib/wh'
    """
    return Path(dsn.removeprefix(CHDB_SCHEME)).resolve()


def connect(settings: Settings, *, readonly: bool = False) -> Client:
    """A client on the warehouse; ``readonly`` sessions are refused writes by the engine itself.

    Read-only sessions start in the project's database (``readonly=1`` forbids switching it)
    with the per-query limits of :func:`readonly_limits`, which ``readonly=1`` locks.
    """
    options: dict[str, Any] = {}
    if readonly:
        options = {"settings": readonly_limits(settings), "database": settings.warehouse_database}
    dsn = settings.warehouse_dsn
    try:
        if dsn.startswith(CHDB_SCHEME):
            directory = chdb_directory(dsn)
            directory.mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(dsn=f"{CHDB_SCHEME}{directory}", **options)
        if settings.warehouse_password is not None:
            options["password"] = settings.warehouse_password.get_secret_value()
        if dsn.startswith("https://"):  # clickhouse-connect takes TLS from the port (443, 8443)
            options["interface"] = "https"  # or this, never from the DSN's scheme
        return clickhouse_connect.get_client(dsn=dsn, **options)
    except Exception as exc:  # the driver raises many types; the user needs one clear message
        hint = ""
        if dsn.startswith(CHDB_SCHEME) and "EmbeddedServer" in str(exc):
            hint = (
                " (only one process may open a chDB directory: if a sink holds it, its SQL "
                "endpoint answers at sql_host:sql_port; check STREAM_APP_SQL_PORT)"
            )
        raise WarehouseError(f"cannot open warehouse {redact(dsn)}: {exc}{hint}") from exc


def readonly_limits(settings: Settings) -> dict[str, Any]:
    """ClickHouse settings of a read-only session, applied in order: ``readonly`` comes last, as
    it forbids changing any setting after it (in ``SET`` and in a query's ``SETTINGS``)."""
    return {
        "max_execution_time": settings.sql_max_execution_s,
        "max_memory_usage": settings.sql_max_memory_mb * 2**20,
        "max_rows_to_read": settings.sql_max_rows_to_read,
        "max_result_rows": settings.sql_max_result_rows,
        "result_overflow_mode": "throw",
        "max_query_size": settings.sql_max_query_bytes,
        "readonly": 1,
    }


def redact(dsn: str) -> str:
    """The DSN without a password, for messages and logs: in its credentials or its query.

    >>> redact("http://user:s3cret@host:8123/db")
    'http://user:***@host:8123/db'
    >>> redact("http://host:8123/?user=alice&password=s3cret&secure=1")
    'http://host:8123/?user=alice&password=***&secure=1'
    """
    dsn = _QUERY_PASSWORD.sub(r"\1***", dsn)
    scheme, sep, rest = dsn.partition("://")
    if not sep:  # no scheme (a typo, e.g. "user:pw@host"): the password must still be hidden
        scheme, rest = "", dsn
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return dsn
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
