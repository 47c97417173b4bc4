"""Warehouse visibility: how long until a sampled event's prediction row can be queried."""

from __future__ import annotations

import time

from stream_app.devtools.bench.deployment import Deployment
from stream_app.warehouse.sql import literal

#: pending ids asked about in one poll, the oldest first
POLL_IDS = 2000


class VisibilityPoller:
    """Asks the warehouse, once per :meth:`poll`, which pending sampled event ids it now shows.

    The visibility of an event is the issue time of the first poll that saw it minus the input
    record's CreateTime: an upper bound within one poll interval.
    """

    def __init__(self, deployment: Deployment) -> None:
        self._deployment = deployment
        self.pending: dict[str, int] = {}  # event id -> CreateTime (ms)
        self.visible: list[tuple[float, float]] = []  # (CreateTime ms, visibility ms)

    def add(self, event_id: str, created_ms: int) -> None:
        self.pending[event_id] = created_ms

    def poll(self) -> None:
        """One query for up to :data:`POLL_IDS` pending ids. It reads ``event_id`` only where a
        row was stored since the oldest of them was created (``ingested_time`` is the sink's
        clock, on this host, after the input's CreateTime): the rest of the table, which grows
        over a run, is passed over on its ``ingested_time`` alone, and the poll costs the sink
        less of the CPU the measured pipeline runs on."""
        if not self.pending:
            return
        issued_ms = time.time() * 1000
        polled = list(self.pending)[:POLL_IDS]
        since_ms = min(self.pending[event_id] for event_id in polled)
        ids = ", ".join(literal(event_id) for event_id in polled)
        stored_since = f"ingested_time >= fromUnixTimestamp64Milli(toInt64({since_ms}))"
        query = f"SELECT event_id FROM predictions_raw WHERE {stored_since} AND event_id IN ({ids})"  # noqa: S608  # ids quoted, since_ms an int
        for (event_id,) in self._deployment.query(query):
            created_ms = self.pending.pop(event_id, None)
            if created_ms is not None:
                self.visible.append((created_ms, issued_ms - created_ms))

    def visibilities(self, since_ms: float) -> list[tuple[float, float]]:
        """(CreateTime, visibility) in ms of the samples created since ``since_ms``."""
        return [(created, v) for created, v in self.visible if created >= since_ms]
