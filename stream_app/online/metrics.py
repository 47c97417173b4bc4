"""Prometheus view of the online learner's counters (:class:`LearnerStats`), read at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from stream_app.online.learner import LearnerState
from stream_app.prometheus import counters_of, registry

#: attribute of :class:`~stream_app.online.learner.LearnerStats` → help
COUNTERS = {
    "scored": "events given a shadow score",
    "learned": "labels learnt from",
    "expired": "vectors or labels pushed out of a full waiting room",
    "skipped_batches": "scored-features records skipped (other features, or malformed)",
}


def learner_metrics(state: LearnerState) -> CollectorRegistry:
    """A registry with the learner's counters only."""
    return registry(lambda: counters_of("stream_app_learner", state.stats, COUNTERS))
