"""Prometheus view of a worker (:class:`ScoringLoop`'s counters), read at scrape time: nothing
on the hot path but a few additions per batch (docs/operations.md, "Metrics")."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream_app.prometheus import counters, durations, histogram, labelled_counter, labelled_gauge
from stream_app.scoring.loop import ScoringLoop

PREFIX = "stream_app_worker"


class LoopCollector(Collector):
    """The loop's counters; ``drift_topic``'s records among the observers' are detections."""

    def __init__(self, loop: ScoringLoop, drift_topic: str) -> None:
        self._loop = loop
        self._drift_topic = drift_topic

    def collect(self) -> Iterator[Metric]:
        loop = self._loop
        stats, switch = loop.stats, loop.switch
        yield from counters(
            PREFIX,
            (
                ("consumed", stats.consumed, "input records consumed"),
                ("scored", stats.scored, "events scored"),
                ("dead_lettered", stats.dead_lettered, "records sent to the dead-letter topic"),
                ("batches", stats.batches, "batches committed"),
                ("alerts", stats.alerts, "alerts published"),
                ("poisoned", stats.poisoned, "records dead-lettered by the poison-pill policy"),
                ("observer_failures", stats.observer_failures, "observer calls that raised"),
                ("commits_dropped", stats.commits_dropped, "commits refused: membership lost"),
                ("outputs_retried", stats.deliveries.retried, "outputs sent again"),
                ("outputs_replaced", stats.deliveries.replaced, "outputs replaced by dead letters"),
                ("outputs_lost", stats.deliveries.lost, "outputs refused for good"),
                ("model_swaps", switch.applied, "control commands applied (models swapped)"),
                ("model_refusals", switch.refused, "control commands refused"),
                (
                    "drift_detections",
                    stats.observed.get(self._drift_topic, 0),
                    "drift detections sent to the drift-events topic",
                ),
            ),
        )
        reasons = dict(stats.dead_letter_reasons)
        if stats.deliveries.replaced:
            reasons["output_refused"] = stats.deliveries.replaced
        yield labelled_counter(
            f"{PREFIX}_dead_letters", "records dead-lettered, by reason", "reason", reasons
        )
        yield labelled_counter(
            f"{PREFIX}_alerts_by_rule",
            "alerts published, by rule (an alert counts for each rule it fired)",
            "rule",
            loop.pipeline.alerts.by_rule,
        )
        champion, challenger = switch.models.versions
        models = GaugeMetricFamily(
            f"{PREFIX}_model", "model version by alias (value 1)", labels=["alias", "version"]
        )
        models.add_metric(["champion", champion], 1)
        if challenger is not None:
            models.add_metric(["challenger", challenger], 1)
        yield models
        yield labelled_gauge(
            f"{PREFIX}_lag",
            "records past the consumer's position, by input partition (broker watermarks)",
            ["topic", "partition"],
            stats.lag.labelled(),
        )
        yield histogram(f"{PREFIX}_batch_size", "records per batch", {"": stats.batch_sizes})
        yield from durations(PREFIX, "batch", stats.last_batch_seconds, stats.stages.laps)


def loop_metrics(loop: ScoringLoop, drift_topic: str) -> CollectorRegistry:
    """A registry with the worker's metrics only (no process or platform collectors)."""
    registry = CollectorRegistry()
    registry.register(LoopCollector(loop, drift_topic))
    return registry
