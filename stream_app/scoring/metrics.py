"""Prometheus view of a worker (:class:`ScoringLoop`'s counters), read at scrape time: nothing
on the hot path but a few additions per batch (docs/operations.md, "Metrics")."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from stream_app.prometheus import (
    counters,
    counters_of,
    durations,
    histogram,
    labelled_counter,
    labelled_gauge,
    registry,
)
from stream_app.scoring.loop import ScoringLoop

PREFIX = "stream_app_worker"
#: the plain counters, attribute → help: of :class:`LoopStats` (``<PREFIX>_<attribute>``) and of
#: its deliveries (``<PREFIX>_outputs_<attribute>``)
COUNTERS = {
    "consumed": "input records consumed",
    "scored": "events scored",
    "dead_lettered": "records sent to the dead-letter topic",
    "batches": "batches committed",
    "alerts": "alerts published",
    "poisoned": "records dead-lettered by the poison-pill policy",
    "observer_failures": "observer calls that raised",
    "commits_dropped": "commits refused: membership lost",
}
DELIVERIES = {
    "retried": "outputs sent again",
    "replaced": "outputs replaced by dead letters",
    "lost": "outputs refused for good",
}


def families(loop: ScoringLoop, drift_topic: str) -> Iterator[Metric]:
    """The loop's metrics, from its counters as they are now; ``drift_topic``'s records among
    the observers' are detections."""
    stats, switch = loop.stats, loop.switch
    yield from counters_of(PREFIX, stats, COUNTERS)
    yield from counters_of(f"{PREFIX}_outputs", stats.deliveries, DELIVERIES)
    drift = stats.observed.get(drift_topic, 0)
    yield from counters(
        PREFIX,
        (
            ("model_swaps", switch.applied, "control commands applied (models swapped)"),
            ("model_refusals", switch.refused, "control commands refused"),
            ("drift_detections", drift, "drift detections sent to the drift-events topic"),
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
    yield histogram(
        f"{PREFIX}_transaction_seconds",
        "exactly-once: time per part of a commit",
        stats.transaction_stages.laps,
        "stage",
    )
    yield histogram(
        f"{PREFIX}_transaction_state_records",
        "exactly-once: card-state changelog records per transaction",
        {"": stats.state_records},
    )
    yield from durations(PREFIX, "batch", stats.last_batch_seconds, stats.stages.laps)


def loop_metrics(loop: ScoringLoop, drift_topic: str) -> CollectorRegistry:
    """A registry with the worker's metrics only."""
    return registry(lambda: families(loop, drift_topic))
