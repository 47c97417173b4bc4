"""The sink's ``/health`` says when it cannot write: records consumed, no insert completing."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.warehouse.client import connect
from stream_app.warehouse.health import SinkHealth
from stream_app.warehouse.metrics import ingest_metrics
from stream_app.warehouse.schema import EVENTS
from stream_app.warehouse.service import build_ingest
from stream_app.warehouse.web import SinkWeb
from tests.integration.conftest import wait_for
from tests.integration.serving import running

pytestmark = pytest.mark.integration


def health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_sink_is_unhealthy_while_its_inserts_fail(make_settings):
    settings = make_settings(health_stall_s=2.0)
    ingest = build_ingest(settings)
    health_of = SinkHealth(ingest.stats, settings.health_stall_s)
    web = running(
        lambda loop: SinkWeb("127.0.0.1", 0, health_of, ingest_metrics(ingest.stats), loop=loop)
    )
    failures: list[BaseException] = []

    def run() -> None:
        try:
            ingest.run()
        except Exception as exc:  # the insert path may stop the loop or keep going: both count
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    with web as endpoint:
        thread.start()
        try:
            produce(settings, ProduceOptions(events=500, seed=41))
            wait_for(
                lambda: ingest.stats.stored.get(settings.topics.transactions, 0) >= 500,
                60,
                "the first events stored",
            )
            assert health(endpoint.port)[0] == 200
            table = f"{settings.warehouse_database}.{EVENTS.raw}"
            connect(settings).command(f"DROP TABLE {table}")  # every insert into it fails now
            produce(settings, ProduceOptions(events=500, seed=42))
            wait_for(
                lambda: (
                    health(endpoint.port)[0] == 503
                    and any("inserts failing" in r for r in health(endpoint.port)[1]["reasons"])
                ),
                60,
                "503: inserts failing",
            )
        finally:
            ingest.stop()
            thread.join(30)
