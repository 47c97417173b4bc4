"""Reload the alert rules file when it changes; a bad file is refused and the rules in use stay."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from stream_app.alerts import RuleError
from stream_app.scoring.alerting import AlertBuilder

log = logging.getLogger(__name__)


class RulesWatcher:
    """Checks the file's modification time at most every ``interval_s`` (between two batches)."""

    def __init__(self, path: Path | None, alerts: AlertBuilder, interval_s: float = 2.0) -> None:
        self._path = path
        self._alerts = alerts
        self._interval_s = interval_s
        self._checked = time.monotonic()
        self._mtime = path.stat().st_mtime_ns if path else 0
        self.refused: str | None = None  # the last refusal, for /health

    def check(self) -> None:
        now = time.monotonic()
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
        try:
            self._alerts.rules = self._alerts.rules.reload(self._path)
        except RuleError as exc:
            self.refused = str(exc)
            log.error("alert rules not reloaded, the previous rules stay: %s", exc)
            return
        self.refused = None
        log.info("alert rules reloaded from %s: %d rules", self._path, len(self._alerts.rules))
