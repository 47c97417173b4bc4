"""Whether the sink writes: what its ``/health`` answers; whether it can take work: ``/readyz``.

The sink cannot write when a record it read has waited more than ``stall_s`` for a completed
flush (insert, then commit): inserts failing or hanging, or the ingest loop stuck; while records
wait for a Schema Registry that does not answer; while partitions assigned for ``stall_s`` have
not been read (:mod:`stream_app.kafka.fetch_watch`); and while no broker answers
(``broker_error``, asked at each call). When its ingest thread dies the process exits with code 70
(:mod:`stream_app.thread_service`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from stream_app.warehouse.ingest import IngestStats


class SinkHealth:
    """Called by the web server for ``GET /health``: the counters, plus ``reasons`` the sink is
    not doing its job (empty when it is)."""

    def __init__(
        self,
        stats: IngestStats,
        stall_s: float,
        clock: Callable[[], float] = time.monotonic,
        broker_error: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._stats = stats
        self._broker_error = broker_error
        self._stall_s = stall_s
        self._clock = clock  # the ingest's: ``unwritten_since`` is on it

    def __call__(self) -> dict[str, object]:
        """
        >>> stats, now = IngestStats(), [0.0]
        >>> health = SinkHealth(stats, stall_s=10, clock=lambda: now[0])
        >>> stats.unwritten, stats.unwritten_since, now[0] = 500, 0.0, 11.0
        >>> health()["reasons"]
        ['500 records read and not written for 11s (limit 10s): inserts failing?']
        >>> stats.unwritten, stats.unwritten_since = 0, None  # a flush completed
        >>> health()["reasons"]
        []
        >>> stats.registry_unavailable_since = 1.0
        >>> health()["reasons"]
        ['records wait for the Schema Registry, which does not answer']
        """
        stats = self._stats
        since = stats.unwritten_since
        reasons = []
        if since is not None and (waited := self._clock() - since) > self._stall_s:
            reasons.append(
                f"{stats.unwritten} records read and not written for {waited:.0f}s "
                f"(limit {self._stall_s:g}s): inserts failing?"
            )
        if stats.registry_unavailable_since is not None:
            reasons.append("records wait for the Schema Registry, which does not answer")
        reasons += stats.fetch.reasons(self._clock(), self._stall_s)
        if (broker_error := self._broker_error()) is not None:
            reasons.append(f"broker unreachable: {broker_error}")
        return {**stats.as_dict(), "reasons": reasons}


def not_ready_reasons(
    stats: IngestStats, *, thread_running: bool, broker_error: str | None
) -> list[str]:
    """Every reason the sink cannot take work (empty: ready): its ingest thread is not running,
    no broker answers, or the warehouse refuses inserts (the last flush failed).

    >>> stats = IngestStats(failed_inserts=3, unwritable_since=0.0)
    >>> not_ready_reasons(stats, thread_running=True, broker_error=None)
    ['warehouse not writable since 1970-01-01T00:00:00+00:00 (3 failed inserts so far)']
    """
    reasons = []
    if not thread_running:
        reasons.append("ingest thread not running")
    if broker_error is not None:
        reasons.append(f"broker unreachable: {broker_error}")
    if stats.unwritable_since is not None:
        since = datetime.fromtimestamp(stats.unwritable_since, UTC).isoformat()
        reasons.append(
            f"warehouse not writable since {since} ({stats.failed_inserts} failed inserts so far)"
        )
    return reasons
