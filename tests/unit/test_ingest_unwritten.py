"""The sink's health counts from the oldest record it read and has not written: inserts that
keep failing make it unhealthy after ``stall_s`` however the flushes and polls fall, even when
another topic's rows of the same flush were written."""

from __future__ import annotations

from prometheus_client import generate_latest

from stream_app.codecs.factory import topic_codec, transaction_decoder
from stream_app.codecs.registry import FileSchemaRegistry
from stream_app.errors import WarehouseUnavailable
from stream_app.event_checks import EventChecks
from stream_app.settings import Settings
from stream_app.warehouse.health import SinkHealth
from stream_app.warehouse.ingest import Route, WarehouseIngest
from stream_app.warehouse.metrics import ingest_metrics
from stream_app.warehouse.rows import avro_rows, event_rows
from stream_app.warehouse.schema import PREDICTIONS
from tests.unit.test_ingest_batches import PREDICTION_TOPIC, TRANSACTIONS, PausingConsumer, poll
from tests.unit.test_sinks_contract import RecordingSink


def test_records_wait_from_their_read_until_a_flush_writes_them(settings: Settings) -> None:
    registry = FileSchemaRegistry(settings.schemas_dir, settings.schema_registry_dir)
    events, predictions = RecordingSink(), RecordingSink()
    events.fail_with = WarehouseUnavailable("Cannot reserve 1.00 MiB, not enough space")
    routes = [  # in flush order: the predictions' rows are written first
        Route(
            PREDICTION_TOPIC,
            avro_rows(topic_codec(settings, registry, "predictions"), PREDICTIONS),
            predictions,
        ),
        Route(
            TRANSACTIONS,
            event_rows(
                transaction_decoder(settings, registry), EventChecks.from_settings(settings)
            ),
            events,
        ),
    ]
    records = poll(settings, undecodable=False)
    consumer = PausingConsumer(records)
    loop = WarehouseIngest(consumer, routes, batch_rows=10_000, flush_interval_s=60)  # type: ignore[arg-type]  # the Consumer calls ingest makes
    health = SinkHealth(loop.stats, stall_s=5, clock=lambda: now)
    loop.poll_once()
    read_at = loop.stats.unwritten_since
    assert read_at is not None and loop.stats.unwritten == len(records)
    for _ in range(3):  # the predictions' rows are written, the transactions' are not
        assert not loop.flush()
        loop.poll_once()  # paused: reads nothing more
    assert consumer.paused and predictions.batches and not consumer.committed
    assert (loop.stats.unwritten, loop.stats.unwritten_since) == (len(records), read_at)
    assert f"stream_app_sink_unwritten {len(records)}.0" in scraped(loop)
    now = read_at + 4
    assert health()["reasons"] == []
    now = read_at + 6
    assert health()["reasons"] == [
        f"{len(records)} records read and not written for 6s (limit 5s): inserts failing?"
    ]
    events.fail_with = None
    assert loop.flush()
    assert (loop.stats.unwritten, loop.stats.unwritten_since) == (0, None)
    assert health()["reasons"] == [] and consumer.committed and not consumer.paused
    assert "stream_app_sink_unwritten 0.0" in scraped(loop)


def scraped(loop: WarehouseIngest) -> str:
    return generate_latest(ingest_metrics(loop.stats)).decode()
