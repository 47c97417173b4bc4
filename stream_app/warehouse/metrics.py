"""Prometheus view of the sink's counters (:class:`IngestStats`), read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from stream_app.prometheus import counters_of, durations, labelled_counter, labelled_gauge, registry
from stream_app.warehouse.ingest import IngestStats

PREFIX = "stream_app_sink"
#: the sink's plain counters: attribute of :class:`IngestStats` → help
COUNTERS = {
    "consumed": "records consumed",
    "undecodable": "records that no longer decode, not stored",
    "failed_inserts": "flushes the warehouse refused (retried)",
    "failed_commits": "offset commits the group refused",
    "lost_assignments": "group memberships lost",
    "flushes": "flushes completed (insert, then commit)",
}


def families(stats: IngestStats) -> Iterator[Metric]:
    """The sink's metrics, from its counters as they are now."""
    yield from counters_of(PREFIX, stats, COUNTERS)
    yield labelled_counter(
        f"{PREFIX}_stored", "rows written, by source topic", "topic", stats.stored
    )
    yield labelled_counter(
        f"{PREFIX}_rejected",
        "rows the warehouse refused, parked, by source topic",
        "topic",
        stats.rejected,
    )
    yield labelled_counter(
        f"{PREFIX}_labels", "label rows written, by label source", "source",
        stats.labels_by_source,
    )  # fmt: skip
    yield labelled_gauge(
        f"{PREFIX}_lag",
        "records past the sink's position, by partition (broker watermarks)",
        ["topic", "partition"],
        stats.lag.labelled(),
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_unwritten", "records read and not yet written (/health's stall)", stats.unwritten
    )
    yield from durations(PREFIX, "flush", stats.last_flush_seconds, stats.stages.laps)


def ingest_metrics(stats: IngestStats) -> CollectorRegistry:
    """A registry with the sink's metrics only."""
    return registry(lambda: families(stats))
