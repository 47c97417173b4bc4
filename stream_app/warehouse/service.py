"""``stream-app sink``: build the warehouse sink from settings and run it until SIGTERM.

Like the worker, a ``mode`` Worker owns the process: signals, the web server
(:mod:`stream_app.warehouse.web`) and the ingest loop, which runs in its own thread
(:mod:`stream_app.thread_service`) so that inserts never block the event loop.
"""

from __future__ import annotations

import functools
import gc
import logging
import socket

import mode
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from stream_app import catalogue
from stream_app.codecs.factory import schema_registry, topic_codec, transaction_decoder
from stream_app.codecs.registry import SchemaRegistry
from stream_app.event_checks import EventChecks
from stream_app.kafka.config import admin_config, bulk_consumer_config
from stream_app.kafka.probe import broker_unreachable
from stream_app.kafka.topics import check_topics, sink_topics
from stream_app.settings import Settings
from stream_app.startup_web import build_answering
from stream_app.thread_service import ThreadService, execute
from stream_app.warehouse.client import connect, redact
from stream_app.warehouse.endpoint import QueryEndpoint
from stream_app.warehouse.health import SinkHealth, not_ready_reasons
from stream_app.warehouse.ingest import IngestStats, Route, WarehouseIngest
from stream_app.warehouse.metrics import ingest_metrics
from stream_app.warehouse.rows import (
    BatchRowMapper,
    avro_batch_rows,
    avro_rows,
    control_rows,
    event_rows,
)
from stream_app.warehouse.schema import BY_VIEW, create_statements
from stream_app.warehouse.sink import ClickHouseSink
from stream_app.warehouse.sql import ReadOnlySql
from stream_app.warehouse.web import SinkWeb

log = logging.getLogger(__name__)

#: allocations between two young collections of the cyclic garbage collector in the sink process
#: (Python's default: 700): a poll allocates a tuple per row and more, and with the defaults the
#: collector took a quarter of the sink's CPU in a drain (docs/sink.md, "Cost per event")
GC_YOUNG_THRESHOLD = 20_000


def build_ingest(settings: Settings) -> WarehouseIngest:
    """The ingest loop with its consumer, codecs and one sink per table (tables created here)."""
    check_topics(settings, sink_topics(settings), broker_wait_s=None)
    client = connect(settings)
    database, ttl_days = settings.warehouse_database, settings.retention_days
    for statement in create_statements(database, ttl_days, settings.quality_top_k):
        client.command(statement)
    stats = IngestStats()
    routes = topic_routes(settings, schema_registry(settings), client, stats)
    consumer = Consumer(
        {**bulk_consumer_config(settings, settings.sink_group), **stats.fetch.consumer_config()}
    )
    return WarehouseIngest(
        consumer, routes, settings.sink_batch_rows, settings.sink_flush_interval_ms / 1000, stats
    )


def topic_routes(
    settings: Settings, registry: SchemaRegistry, client: Client, stats: IngestStats
) -> list[Route]:
    """One route per stored topic of the catalogue, into its table: the Avro fields are the
    columns, except for the transactions (decoded and checked as the workers do) and the control
    statuses (heartbeats are not stored). The labels written are counted by source in
    ``stats``."""
    routes = []
    for spec, table_name in catalogue.STORED.items():
        table = BY_VIEW[table_name]
        to_rows: BatchRowMapper | None = None
        if spec is catalogue.TRANSACTIONS:
            checks = EventChecks.from_settings(settings)
            to_row = event_rows(transaction_decoder(settings, registry), checks)
        elif spec is catalogue.CONTROL_STATUS:
            to_row = control_rows(topic_codec(settings, registry, spec.field))
        else:
            # labels: the first per event and source counts, in log order (warehouse/schema.py)
            codec = topic_codec(settings, registry, spec.field)
            to_row = avro_rows(codec, table, spec is catalogue.LABELS)
            if spec is not catalogue.LABELS:  # labels carry their log position, read one by one
                to_rows = avro_batch_rows(codec, table)
        counted = ("label_source", stats.labels_by_source) if spec is catalogue.LABELS else None
        sink = ClickHouseSink(client, settings.warehouse_database, table, counted)
        routes.append(Route(spec.name(settings.topics), to_row, sink, to_rows))
    return routes


def tune_garbage_collector() -> None:
    """Collect young objects every :data:`GC_YOUNG_THRESHOLD` allocations; the older generations
    keep Python's ratios. For the sink process only: a test that runs an ingest loop in its own
    process keeps Python's defaults. (What start-up built is frozen out of every collection by
    :class:`~stream_app.thread_service.ThreadService` when the ingest thread starts.)"""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def run_sink(settings: Settings) -> None:
    """Build the ingest loop (broker waited for, tables created, topics checked), answering
    "starting" on the web port meanwhile, and serve it until SIGTERM."""
    ingest, listener = build_answering(
        settings,
        settings.sql_port,
        "checking the topics and opening the warehouse",
        lambda: build_ingest(settings),
    )
    tune_garbage_collector()
    log.info("sink ingesting into %s", redact(settings.warehouse_dsn))
    serve(settings, ingest, listener)


def serve(settings: Settings, ingest: WarehouseIngest, listener: socket.socket) -> None:
    """Ingest in a thread and serve ``/health``, ``/healthz``, ``/readyz``, ``/metrics`` and
    (embedded warehouse) read-only SQL on ``listener`` until SIGTERM or SIGINT, which flush and
    commit; exit 70 if the ingest thread ends on its own."""
    service = ThreadService(ingest, "ingest-loop")
    sql = None
    if settings.embedded_warehouse:
        read_only = ReadOnlySql(lambda: connect(settings, readonly=True))
        sql = QueryEndpoint.from_settings(settings, read_only)
    admin = AdminClient(admin_config(settings))

    def ready() -> list[str]:
        return not_ready_reasons(
            ingest.stats,
            thread_running=service.running,
            broker_error=broker_unreachable(admin, settings.health_broker_timeout_s),
        )

    web = SinkWeb(
        listener,
        SinkHealth(
            ingest.stats,
            settings.health_stall_s,
            broker_error=functools.partial(
                broker_unreachable,
                AdminClient(admin_config(settings)),
                settings.health_broker_timeout_s,
            ),
        ),
        ingest_metrics(ingest.stats),
        ready,
        sql=sql,
    )
    execute(mode.Worker(service, web, override_logging=False), service)
