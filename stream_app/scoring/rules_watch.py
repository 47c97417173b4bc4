"""Reload the alert rules file when it changes; a bad file is refused and the rules in use stay.

The file is read in a thread of its own, never on the scoring thread: a read that does not finish
within ``timeout_s`` is refused (and left to finish or hang in its daemon thread), so a path that
blocks (a FIFO, a hung mount) cannot freeze scoring or hold a shutdown up.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from stream_app.alerts import RuleError, RuleSet
from stream_app.scoring.alerting import AlertBuilder

log = logging.getLogger(__name__)


class RulesWatcher:
    """Checks the file's modification time at most every ``interval_s`` (between two batches)."""

    def __init__(
        self,
        path: Path | None,
        alerts: AlertBuilder,
        interval_s: float = 2.0,
        timeout_s: float = 5.0,
    ) -> None:
        self._path = path
        self._alerts = alerts
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._checked = time.monotonic()
        self._mtime = path.stat().st_mtime_ns if path else 0
        self._loading: tuple[float, Future[RuleSet]] | None = None  # started at, result
        self.refused: str | None = None  # the last refusal, for /health

    @property
    def loading(self) -> bool:
        """Whether a changed file is being read (its outcome is taken at a later check)."""
        return self._loading is not None

    def check(self) -> None:
        now = time.monotonic()
        if self._loading is not None:
            self._collect(now, *self._loading)
            return
        if self._path is None or now - self._checked < self._interval_s:
            return
        self._checked = now
        try:
            mtime = self._path.stat().st_mtime_ns
        except OSError as exc:
            self.refused = f"{self._path}: {exc}"
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        self._loading = (now, self._load(self._path))

    def _load(self, path: Path) -> Future[RuleSet]:
        """Read and validate ``path`` in a daemon thread (nothing waits for it at exit)."""
        future: Future[RuleSet] = Future()

        def read() -> None:
            try:
                future.set_result(self._alerts.rules.reload(path))
            except RuleError as exc:
                future.set_exception(exc)

        threading.Thread(target=read, name="rules-loader", daemon=True).start()
        return future

    def _collect(self, now: float, started: float, future: Future[RuleSet]) -> None:
        if not future.done():
            if now - started >= self._timeout_s:
                self._loading = None
                self._refuse(f"{self._path}: not read within {self._timeout_s:g}s")
            return
        self._loading = None
        try:
            self._alerts.rules = future.result()
        except RuleError as exc:
            self._refuse(str(exc))
            return
        self.refused = None
        log.info("alert rules reloaded from %s: %d rules", self._path, len(self._alerts.rules))

    def _refuse(self, reason: str) -> None:
        self.refused = reason
        log.error("alert rules not reloaded, the previous rules stay: %s", reason)
