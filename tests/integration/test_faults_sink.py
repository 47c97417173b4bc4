"""Fault suite: the sink killed mid-insert, and a warehouse that cannot take writes for a while.

Each runs the sink and a worker as processes under load and ends with the ledger check.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from stream_app.devtools.bench.deployment import Deployment
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.processes import ChildProcess, get_json
from tests.integration.conftest import (
    assert_ledger,
    committed,
    fill,
    producing,
    wait_for,
    wait_until_stored,
)
from tests.integration.faults import STARTUP_S, answered

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.local_stack]

OUTAGE_S = 60  # the warehouse outage of the issue


def stored(health: dict | None) -> int:
    return sum((health or {}).get("stored", {}).values())


def test_sink_sigkill_mid_insert_then_restarted(make_settings, fault_figures, tmp_path):
    settings = make_settings(
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}", sink_flush_interval_ms=100
    )
    options = ProduceOptions(events=20_000, rate=2000, bad_fraction=0.01, seed=61)
    deployment = Deployment(settings, "sink-kill", tmp_path)
    try:
        deployment.start(STARTUP_S)
        with producing(deployment.settings, options) as result:
            wait_for(
                lambda: stored(deployment.sink_health()) >= 5000, STARTUP_S, "the sink storing"
            )
            deployment.sink.kill()  # SIGKILL, flushing every 100 ms: an insert is likely in flight
            killed_at = time.monotonic()
            deployment.children[0] = ChildProcess("sink-2", ["sink"], settings, tmp_path)
            url = deployment.sink.web_url("/health", STARTUP_S)
            wait_for(
                lambda: (get_json(url) or {}).get("flushes", 0) > 0, STARTUP_S, "storing again"
            )
            fault_figures.recovery_s = round(time.monotonic() - killed_at, 1)
        settings = settings.model_copy(update={"sql_port": deployment.sink.web_port()})
        report = result["report"]
        wait_until_stored(settings, report)
        fault_figures.peak_rss("sink", deployment.sink.pid)
    finally:
        deployment.stop()
    assert_ledger(settings, report, fault_figures)


def test_warehouse_full_for_a_while(make_settings, fault_figures, small_filesystem, tmp_path):
    """The warehouse directory on a small filesystem, filled up by another file: every insert
    fails (NOT_ENOUGH_SPACE) until that file is removed; events keep coming meanwhile."""
    settings = make_settings(
        warehouse_dsn=f"chdb://{small_filesystem / 'warehouse'}", health_stall_s=5.0
    )
    deployment = Deployment(settings, "warehouse-full", tmp_path)
    filler = small_filesystem / "filler"
    try:
        deployment.start(STARTUP_S)
        settings = deployment.settings
        before = produce(settings, ProduceOptions(events=2000, bad_fraction=0.01, seed=62))
        wait_for(lambda: committed(settings, settings.sink_group) == 2000, STARTUP_S, "stored")
        fill(filler)
        options = ProduceOptions(events=OUTAGE_S * 1000, rate=1000, bad_fraction=0.01, seed=63)
        with producing(settings, options) as result:
            wait_for(lambda: sink_field(deployment, "failed_inserts") > 0, 60, "inserts failing")
            outage_started = time.monotonic()
            scored_then = answered(deployment.worker_health)["scored"]
            wait_for(lambda: sink_field(deployment, "status") == "unhealthy", 30, "503")
            consumed = sink_field(deployment, "consumed")  # paused: it reads no more
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))  # the outage
            assert sink_field(deployment, "status") == "unhealthy"
            assert sink_field(deployment, "consumed") == consumed  # paused: memory bounded
            assert committed(settings, settings.sink_group) == 2000  # nothing unstored committed
            assert (
                answered(deployment.worker_health)["scored"] > scored_then
            )  # workers keep scoring
            fault_figures.peak_rss("sink", deployment.sink.pid)
            filler.unlink()
            restored_at = time.monotonic()
            backlog = committed(settings, settings.worker_group)  # scored, so in the topics
            wait_for(lambda: sink_field(deployment, "status") == "ok", 120, "healthy again")
            fault_figures.recovery_s = round(time.monotonic() - restored_at, 1)
            wait_for(
                lambda: committed(settings, settings.sink_group) >= backlog,
                240,
                "the sink caught up with what was scored during the outage",
            )
            fault_figures.notes["catch-up events/s"] = round(
                (backlog - 2000) / (time.monotonic() - restored_at)
            )
        fault_figures.notes["outage s"] = OUTAGE_S
        report = result["report"]
        report.valid, report.malformed = (
            report.valid + before.valid,
            report.malformed + before.malformed,
        )
        wait_until_stored(settings, report)
        fault_figures.peak_rss("worker", deployment.worker.pid)
    finally:
        filler.unlink(missing_ok=True)
        deployment.stop()
    assert_ledger(settings, report, fault_figures)


def sink_field(deployment: Deployment, name: str) -> Any:
    return (deployment.sink_health() or {}).get(name, 0)
