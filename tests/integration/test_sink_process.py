"""The real sink process: it lowers its CPU priority, and its threads with it, for scoring."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stream_app.processes import ChildProcess, get_json
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def niceness(pid: int) -> dict[int, int]:
    """Thread id → nice value, of every thread of ``pid`` (field 19 of its stat line)."""
    values = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        values[int(task.name)] = int(fields[16])
    return values


def test_the_sink_and_its_threads_run_at_the_configured_niceness(make_settings, tmp_path):
    settings = make_settings(sink_nice=7, warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}")
    sink = ChildProcess("sink-nice", ["sink"], settings, tmp_path)
    try:
        wait_for(
            lambda: get_json(f"http://127.0.0.1:{settings.sql_port}/health") is not None,
            60,
            "sink serving",
        )
        threads = niceness(sink.pid)
    finally:
        assert sink.stop() == 0
    lowered = os.getpriority(os.PRIO_PROCESS, 0) + 7
    assert threads[sink.pid] == lowered
    # chDB's pools, librdkafka's threads, the SQL endpoint; chDB sets its MemoryWorker thread to
    # -20 where it is allowed to (as root): 0.01-0.03 CPU seconds per benchmark phase
    assert sum(value == lowered for value in threads.values()) >= 10
