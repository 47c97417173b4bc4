"""Warehouse visibility: how long until a sampled event's prediction row can be queried."""

from __future__ import annotations

import time

from stream_app.devtools.bench.deployment import Deployment
from stream_app.warehouse.sql import literal


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
        if not self.pending:
            return
        issued_ms = time.time() * 1000
        ids = ", ".join(literal(event_id) for event_id in list(self.pending)[:2000])
        query = f"SELECT event_id FROM predictions_raw WHERE event_id IN ({ids})"  # noqa: S608  # quoted
        for (event_id,) in self._deployment.query(query):
            created_ms = self.pending.pop(event_id, None)
            if created_ms is not None:
                self.visible.append((created_ms, issued_ms - created_ms))

    def visibilities(self, since_ms: float) -> list[tuple[float, float]]:
        """(CreateTime, visibility) in ms of the samples created since ``since_ms``."""
        return [(created, v) for created, v in self.visible if created >= since_ms]
