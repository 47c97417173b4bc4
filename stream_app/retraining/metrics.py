"""The retrainer's counters and their Prometheus view, read at scrape time."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric, StateSetMetricFamily

from stream_app.prometheus import counters_of, histogram, labelled_counter, registry
from stream_app.timing import Distribution

PREFIX = "stream_app_retrainer"
#: upper bounds of the training runs' duration histogram, seconds
RUN_BOUNDS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
State = Literal["idle", "training", "shadow", "watch"]
STATES: tuple[State, ...] = ("idle", "training", "shadow", "watch")
#: the latest decisions kept for ``/health``
DECISIONS_KEPT = 20


@dataclass
class RetrainerStats:
    """What the retrainer did since it started (written by its thread, read by a scrape)."""

    detections_read: int = 0
    warehouse_failures: int = 0
    """warehouse queries that failed (asked again after a backoff)"""
    skipped: Counter[str] = field(default_factory=Counter)
    """detections that started no run, by reason: ``undecodable``, ``not_configured`` (signal or
    detector not in the policy), ``too_soon`` (cool-down or too few new frauds),
    ``already_decided`` (read again after a restart, its decisions recorded)"""
    runs: Counter[tuple[str, str]] = field(default_factory=Counter)
    """recorded decisions by (trigger, decision): runs (``drift``) and rollout steps"""
    decisions: deque[str] = field(default_factory=lambda: deque(maxlen=DECISIONS_KEPT))
    """the latest :data:`DECISIONS_KEPT` decisions recorded, oldest first"""
    run_seconds: Distribution = field(default_factory=lambda: Distribution(RUN_BOUNDS))
    """training runs' wall time, as recorded"""
    state: State = "idle"

    def record(self, trigger: str, decision: str) -> None:
        """Count a recorded decision and keep it among the latest.

        >>> stats = RetrainerStats()
        >>> for n in range(DECISIONS_KEPT + 5):
        ...     stats.record("drift", f"decision {n}")
        >>> len(stats.decisions), stats.decisions[0], sum(stats.runs.values())
        (20, 'decision 5', 25)
        """
        self.runs[(trigger, decision)] += 1
        self.decisions.append(decision)


def families(stats: RetrainerStats) -> Iterator[Metric]:
    """The retrainer's metric families now."""
    yield from counters_of(PREFIX, stats, {
        "detections_read": "drift detections read",
        "warehouse_failures": "warehouse queries that failed (asked again after a backoff)",
    })  # fmt: skip
    yield labelled_counter(
        f"{PREFIX}_detections_skipped", "detections that started no run", "reason", stats.skipped
    )
    yield labelled_counter(
        f"{PREFIX}_runs", "recorded decisions (runs and rollout steps)",
        ["trigger", "decision"], stats.runs,
    )  # fmt: skip
    yield histogram(f"{PREFIX}_run_seconds", "training runs' wall time", {"": stats.run_seconds})
    state = StateSetMetricFamily(f"{PREFIX}_state", "what the retrainer is doing")
    state.add_metric([], {name: name == stats.state for name in STATES})
    yield state


def retrainer_metrics(stats: RetrainerStats) -> CollectorRegistry:
    """A registry with the retrainer's metrics only."""
    return registry(lambda: families(stats))
