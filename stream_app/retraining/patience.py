"""The retrainer's questions to the warehouse, asked again while it does not answer.

A failed query (the sink down, its endpoint refusing, a query error) does not end the
retrainer: it waits and asks again, the wait doubled from ``retrainer_warehouse_retry_s`` up to
``retrainer_warehouse_retry_max_s``, for as long as it takes; meanwhile :attr:`Patience.unavailable`
says why (``/readyz`` and ``/health`` show it). It logs when the warehouse stops answering and
when it answers again, not each attempt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from stream_app.errors import WarehouseError
from stream_app.outage import Outage
from stream_app.retraining.metrics import RetrainerStats
from stream_app.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


class Patience:
    """Asks the warehouse until it answers or ``stopping`` is set; each failed question counted
    in ``stats.warehouse_failures``."""

    def __init__(
        self, settings: Settings, stopping: threading.Event, stats: RetrainerStats
    ) -> None:
        self.stopping, self._stats = stopping, stats
        self._outage = Outage(
            settings.retrainer_warehouse_retry_s, settings.retrainer_warehouse_retry_max_s
        )
        self.unavailable: str | None = None
        """why the last question failed, while the warehouse does not answer; None when it does"""

    def ask(self, question: Callable[[], T]) -> T | None:
        """What ``question`` answers, once it does; None when ``stopping`` is set first."""
        while not self.stopping.is_set():
            try:
                answer = question()
            except WarehouseError as exc:
                self.unavailable = str(exc)
                self._stats.warehouse_failures += 1
                if self._outage.failed():
                    log.warning("warehouse unavailable, asking again with a backoff: %s", exc)
                self.stopping.wait(self._outage.wait_s())
                continue
            if self._outage.ended():
                log.info("the warehouse answers again")
            self.unavailable = None
            return answer
        return None
