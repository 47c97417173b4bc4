"""Readiness of read-only SQL: a sink endpoint that does not answer is a reason, and the
warehouse is never opened instead (with chDB only the sink may open it); a query is refused
the same way."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stream_app.errors import WarehouseUnavailable
from stream_app.settings import Settings
from stream_app.warehouse.sql import query_rows, unanswered


def test_an_endpoint_that_refuses_connections_is_a_reason_and_the_warehouse_stays_closed(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "warehouse"
    with socket.socket() as bound:  # bound, not listening: a connection is refused
        bound.bind(("127.0.0.1", 0))
        settings = Settings(warehouse_dsn=f"chdb://{warehouse}", sql_port=bound.getsockname()[1])
        reason = unanswered(settings, 1.0)
    assert reason is not None and "refused" in reason.lower(), reason
    assert not warehouse.exists()


def test_a_query_without_the_sinks_endpoint_is_unavailable_and_never_opens_the_warehouse(
    tmp_path: Path,
) -> None:
    """Only a caller that says so (``open_locally``: ``stream-app sql``) opens the directory: any
    other reader would keep the sink from starting again."""
    warehouse = tmp_path / "warehouse"
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        settings = Settings(warehouse_dsn=f"chdb://{warehouse}", sql_port=bound.getsockname()[1])
        with pytest.raises(WarehouseUnavailable, match=r"does not answer: .*[Rr]efused"):
            query_rows(settings, "SELECT 1")
    assert not warehouse.exists()
