"""The sink's ``/health`` says when it cannot write (records consumed, no insert completing) or
cannot read (records held behind a transaction left open)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from confluent_kafka import Producer

from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import producer_config
from stream_app.settings import Settings
from stream_app.warehouse.client import connect
from stream_app.warehouse.health import SinkHealth
from stream_app.warehouse.ingest import WarehouseIngest
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


def unhealthy_because(port: int, words: str) -> bool:
    status, document = health(port)
    return status == 503 and any(words in reason for reason in document["reasons"])


def store_events(
    settings: Settings, ingest: WarehouseIngest, port: int, events: int, seed: int
) -> None:
    """Produce ``events`` and wait until the sink stored them, healthy."""
    produce(settings, ProduceOptions(events=events, seed=seed))
    wait_for(
        lambda: ingest.stats.stored.get(settings.topics.transactions, 0) >= events,
        60,
        "the first events stored",
    )
    assert health(port)[0] == 200


@contextmanager
def ingesting(settings: Settings) -> Iterator[tuple[WarehouseIngest, int]]:
    """The sink's ingest loop in a thread and its ``/health`` on a port, until the block ends."""
    ingest = build_ingest(settings)
    health_of = SinkHealth(ingest.stats, settings.health_stall_s)
    web = running(
        lambda loop: SinkWeb(
            socket.create_server(("127.0.0.1", 0)),
            health_of,
            ingest_metrics(ingest.stats),
            loop=loop,
        )
    )

    def run() -> None:
        # the insert path may stop the loop or keep going: both count
        with contextlib.suppress(Exception):
            ingest.run()

    thread = threading.Thread(target=run, daemon=True)
    with web as endpoint:
        thread.start()
        try:
            yield ingest, endpoint.port
        finally:
            ingest.stop()
            thread.join(30)


def test_the_sink_is_unhealthy_while_its_inserts_fail(make_settings):
    settings = make_settings(health_stall_s=2.0)
    with ingesting(settings) as (ingest, port):
        store_events(settings, ingest, port, events=500, seed=41)
        table = f"{settings.warehouse_database}.{EVENTS.raw}"
        connect(settings).command(f"DROP TABLE {table}")  # every insert into it fails now
        produce(settings, ProduceOptions(events=500, seed=42))
        wait_for(lambda: unhealthy_because(port, "inserts failing"), 60, "503: inserts failing")


def test_the_sink_is_unhealthy_while_a_transaction_left_open_holds_its_records(make_settings):
    """A record of an open transaction holds every read-committed reader of its partition at
    its offset (after a broker stop left one hanging, for good): 503 until it ends."""
    settings = make_settings(health_stall_s=2.0)
    topic = settings.topics.predictions
    holder = Producer(
        producer_config(
            settings, **{"transactional.id": f"holder-{topic}", "transaction.timeout.ms": 120_000}
        )
    )
    with ingesting(settings) as (ingest, port):
        store_events(settings, ingest, port, events=200, seed=43)
        holder.init_transactions(30)
        holder.begin_transaction()
        holder.produce(topic, b"held", partition=0)
        holder.flush(30)
        wait_for(lambda: unhealthy_because(port, "last stable offset unmoved"), 60, "503: held")
        assert f"{topic}:0" in health(port)[1]["reasons"][0]
        holder.abort_transaction(30)
        wait_for(lambda: health(port)[0] == 200, 60, "200 once the transaction ended")
