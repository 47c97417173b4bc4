"""Open clickhouse-connect clients for the configured warehouse: chDB (embedded) or a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from stream_app.errors import WarehouseError
from stream_app.settings import Settings

CHDB_SCHEME = "chdb://"


def chdb_directory(dsn: str) -> Path:
    """The data directory of a ``chdb://`` DSN, relative paths resolved against the cwd.

    >>> chdb_directory("chdb:///var/lib/wh").as_posix()
    '/var/lib/wh'
    """
    return Path(dsn.removeprefix(CHDB_SCHEME)).resolve()


def connect(settings: Settings, *, readonly: bool = False) -> Client:
    """A client on the warehouse; ``readonly`` sessions are refused writes by the engine itself.

    Read-only sessions start in the project's database (``readonly=1`` forbids switching it).
    """
    options: dict[str, Any] = {}
    if readonly:
        options = {"settings": {"readonly": 1}, "database": settings.warehouse_database}
    dsn = settings.warehouse_dsn
    try:
        if dsn.startswith(CHDB_SCHEME):
            directory = chdb_directory(dsn)
            directory.mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(dsn=f"{CHDB_SCHEME}{directory}", **options)
        if settings.warehouse_password is not None:
            options["password"] = settings.warehouse_password.get_secret_value()
        return clickhouse_connect.get_client(dsn=dsn, **options)
    except Exception as exc:  # the driver raises many types; the user needs one clear message
        hint = ""
        if dsn.startswith(CHDB_SCHEME) and "EmbeddedServer" in str(exc):
            hint = (
                " (only one process may open a chDB directory: if a sink holds it, its SQL "
                "endpoint answers at sql_host:sql_port; check STREAM_APP_SQL_PORT)"
            )
        raise WarehouseError(f"cannot open warehouse {redact(dsn)}: {exc}{hint}") from exc


def redact(dsn: str) -> str:
    """The DSN without a password, for messages and logs.

    >>> redact("http://user:s3cret@host:8123/db")
    'http://user:***@host:8123/db'
    """
    scheme, sep, rest = dsn.partition("://")
    if not sep:  # no scheme (a typo, e.g. "user:pw@host"): the password must still be hidden
        scheme, rest = "", dsn
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return dsn
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
