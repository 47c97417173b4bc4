"""Prometheus view of the sink's counters (:class:`IngestStats`), read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from stream_app.prometheus import counters, durations, labelled_counter, labelled_gauge
from stream_app.warehouse.ingest import IngestStats


class IngestCollector(Collector):
    def __init__(self, stats: IngestStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        yield from counters(
            "stream_app_sink",
            (
                ("consumed", stats.consumed, "records consumed"),
                ("undecodable", stats.undecodable, "records that no longer decode, not stored"),
                ("failed_inserts", stats.failed_inserts, "flushes the warehouse refused (retried)"),
                ("failed_commits", stats.failed_commits, "offset commits the group refused"),
                ("lost_assignments", stats.lost_assignments, "group memberships lost"),
                ("flushes", stats.flushes, "flushes completed (insert, then commit)"),
            ),
        )
        yield labelled_counter(
            "stream_app_sink_stored", "rows written, by source topic", "topic", stats.stored
        )
        yield labelled_counter(
            "stream_app_sink_rejected",
            "rows the warehouse refused, parked, by source topic",
            "topic",
            stats.rejected,
        )
        yield labelled_gauge(
            "stream_app_sink_lag",
            "records past the sink's position, by partition (broker watermarks)",
            ["topic", "partition"],
            stats.lag.labelled(),
        )
        yield from durations(
            "stream_app_sink", "flush", stats.last_flush_seconds, stats.stages.laps
        )


def ingest_metrics(stats: IngestStats) -> CollectorRegistry:
    """A registry with the sink's counters only (no process or platform collectors)."""
    registry = CollectorRegistry()
    registry.register(IngestCollector(stats))
    return registry
