"""A dependency that cannot be used now (the warehouse, the Schema Registry): since when, and
when to try again, after a backoff doubled at each failure up to a bound."""

from __future__ import annotations

import time


class Outage:
    """Failures in a row of one dependency, and the backoff before the next attempt.

    >>> outage = Outage(first_s=1.0, max_s=3.0)
    >>> outage.failed(), outage.backoff_s, outage.failed(), outage.backoff_s, outage.failed()
    (True, 2.0, False, 3.0, False)
    >>> outage.ended(), outage.backoff_s, outage.ended()
    (True, 1.0, False)
    """

    def __init__(self, first_s: float = 0.5, max_s: float = 30.0) -> None:
        self.since: float | None = None
        """epoch seconds of the first failure of the outage; None while it answers"""
        self._first_s, self._max_s = first_s, max_s
        self.backoff_s = first_s
        """the wait after the next failure"""
        self._retry_at = 0.0

    def failed(self) -> bool:
        """Note a failure; True if it starts an outage."""
        started = self.since is None
        if started:
            self.since = time.time()
        self._retry_at = time.monotonic() + self.backoff_s
        self.backoff_s = min(2 * self.backoff_s, self._max_s)
        return started

    def due(self) -> bool:
        return time.monotonic() >= self._retry_at

    def wait_s(self) -> float:
        """Seconds until the next attempt is due (0 when it is)."""
        return max(0.0, self._retry_at - time.monotonic())

    def ended(self) -> bool:
        """Note a success; True if it ends an outage."""
        ended = self.since is not None
        self.since, self.backoff_s, self._retry_at = None, self._first_s, 0.0
        return ended
