"""Which drift detections start a training run: the retrainer's policy.

A detection counts when its signal and detector are among those configured. It starts a run
when, besides, it is dated (event time) at least ``cooldown`` after the window of the last run
ended, and at least ``min_new_frauds`` labelled frauds are dated after that window: a model
trained again on nearly the same labels cannot do better than the last one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stream_app.settings import Settings


def _names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class Policy:
    signals: frozenset[str]
    detectors: frozenset[str]
    """empty: every detector"""
    cooldown_ms: int
    min_new_frauds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            _names(settings.retrainer_signals),
            _names(settings.retrainer_detectors),
            int(settings.retrainer_cooldown_hours * 3.6e6),
            settings.retrainer_min_new_frauds,
        )

    def ignored(self, detection: Mapping[str, Any]) -> str | None:
        """Why ``detection`` (a ``drift_events`` record) does not count; None when it does.

        >>> policy = Policy(frozenset({"score"}), frozenset(), 0, 0)
        >>> policy.ignored({"signal": "feature", "detector": "psi"})
        'signal feature is not one of score'
        >>> policy.ignored({"signal": "score", "detector": "psi"}) is None
        True
        """
        if detection["signal"] not in self.signals:
            return f"signal {detection['signal']} is not one of {', '.join(sorted(self.signals))}"
        if self.detectors and detection["detector"] not in self.detectors:
            return (
                f"detector {detection['detector']} is not one of "
                f"{', '.join(sorted(self.detectors))}"
            )
        return None

    def not_yet(self, detected_at_ms: int, last_window_end_ms: int, new_frauds: int) -> str | None:
        """Why a counting detection dated ``detected_at_ms`` starts no run now; None when it
        does.

        >>> policy = Policy(frozenset({"score"}), frozenset(), cooldown_ms=1000, min_new_frauds=5)
        >>> policy.not_yet(1500, 1000, 9)
        'cool-down: 500 ms after the last run window, fewer than 1000'
        >>> policy.not_yet(2500, 1000, 4)
        '4 labelled frauds since the last run window, fewer than 5'
        >>> policy.not_yet(2500, 1000, 5) is None
        True
        """
        since_ms = detected_at_ms - last_window_end_ms
        if last_window_end_ms and since_ms < self.cooldown_ms:
            return (
                f"cool-down: {since_ms} ms after the last run window, fewer than {self.cooldown_ms}"
            )
        if new_frauds < self.min_new_frauds:
            return (
                f"{new_frauds} labelled frauds since the last run window, "
                f"fewer than {self.min_new_frauds}"
            )
        return None
