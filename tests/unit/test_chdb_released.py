"""A process that read a chDB directory, or ran a sink on one, leaves it for another.

chDB opens one directory per process at a time, until every client on it is closed ("EmbeddedServer
already initialized with path ..."). ``stream-app sql`` and a stopped ingest loop close theirs, so
that a process (a test session, an embedding application) can go on to another directory. Run in a
child process: this one may hold the session's directory (tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from stream_app.errors import WarehouseError
from stream_app.settings import Settings
from stream_app.warehouse.client import connect
from stream_app.warehouse.schema import EVENTS
from stream_app.warehouse.sink import ClickHouseSink
from stream_app.warehouse.sql import run_query

# port 9: no SQL endpoint answers there, so each query opens its directory here
first, second, third = (
    Settings(warehouse_dsn=f"chdb://{d}", warehouse_database="default", sql_port=9)
    for d in sys.argv[1:]
)
try:
    run_query(first, "SELEC 1", "CSV", open_locally=True)
except WarehouseError as exc:
    kept = exc  # its traceback holds the frames of the query, and what they held
ClickHouseSink(connect(second), "default", EVENTS).close()
sys.stdout.write(run_query(third, "SELECT 3", "CSV", open_locally=True).decode())
"""


def test_a_local_query_and_a_closed_sink_free_their_directory_for_another(
    tmp_path: Path,
) -> None:
    directories = [str(tmp_path / name) for name in ("first", "second", "third")]
    child = subprocess.run(  # this interpreter, this test's script
        [sys.executable, "-c", SCRIPT, *directories],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == "3"
