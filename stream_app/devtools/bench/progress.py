"""Progress lines while a phase runs: one every few seconds, never a flood."""

from __future__ import annotations

import time
from collections.abc import Callable

Say = Callable[[str], None]


class Ticker:
    """``due()`` is true at most once per ``every_s`` seconds.

    >>> ticker = Ticker(every_s=0.0)
    >>> ticker.due(), ticker.due()
    (True, True)
    """

    def __init__(self, every_s: float = 2.0) -> None:
        self._every_s = every_s
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self._every_s:
            self._last = now
            return True
        return False
