"""Monitors of the error stream: 1 where a joined label says the model was wrong, else 0.

Two detectors, as the literature pairs them: ADWIN (two-sided, adapts its window; River's
implementation is in Rust) and HDDM_A, two-sided like ADWIN: a concept drift may leave the
model better as well as worse (a one-sided HDDM_A missed such drifts in the benchmark).
Their defaults come from ``monitors.calibrated``: chosen for a stated number of events between
false alarms on a stationary error stream, not River's defaults.

>>> import random
>>> rng = random.Random(1)
>>> monitor = HddmMonitor()
>>> errors = [int(rng.random() < 0.1) for _ in range(5000)]
>>> errors += [int(rng.random() < 0.4) for _ in range(5000)]
>>> [i for i, e in enumerate(errors) if (monitor.update(e), monitor.drift_detected)[1]][:1]
[5017]
"""

from __future__ import annotations

from typing import Self

from river import drift

from monitors import calibrated
from monitors.base import MonitorState, flag, integer, number
from monitors.river_state import RiverMonitor, mean_from, mean_state, restore_rust, rust_state


class AdwinMonitor(RiverMonitor):
    """ADWIN over a stream of values in [0, 1] (here, errors).

    Its state is the Rust window's own serialisation (``bincode``, plain data, not pickle),
    base64-encoded, for the River version that wrote it.
    """

    kind = "adwin"

    def __init__(self, delta: float = calibrated.ADWIN_DELTA, clock: int = 32) -> None:
        super().__init__(drift.ADWIN(delta=delta, clock=clock))
        self.delta = delta
        self.clock = clock

    def save(self) -> MonitorState:
        return self._header() | {
            "delta": self.delta,
            "clock": self.clock,
            "window": rust_state(self._detector._helper),
        }

    @classmethod
    def from_state(cls, state: MonitorState) -> Self:
        cls._check(state)
        monitor = cls(delta=number(state, "delta"), clock=integer(state, "clock"))
        restore_rust(monitor._detector._helper, state, "window")
        monitor._restore_flag(state)
        return monitor


class HddmMonitor(RiverMonitor):
    """HDDM_A over an error stream (1 = error): Hoeffding bounds on the running mean."""

    kind = "hddm_a"

    def __init__(
        self, confidence: float = calibrated.HDDM_CONFIDENCE, two_sided: bool = True
    ) -> None:
        detector = drift.binary.HDDMA(
            drift_confidence=confidence, warning_confidence=confidence, two_sided_test=two_sided
        )
        super().__init__(detector)
        self.confidence = confidence
        self.two_sided = two_sided

    def save(self) -> MonitorState:
        d = self._detector
        return self._header() | {
            "confidence": self.confidence,
            "two_sided": self.two_sided,
            "z": mean_state(d._z),
            "x_min": mean_state(d._x_min),
            "x_max": mean_state(d._x_max),
            "warning": bool(d._warning_detected),
        }

    @classmethod
    def from_state(cls, state: MonitorState) -> Self:
        cls._check(state)
        monitor = cls(confidence=number(state, "confidence"), two_sided=flag(state, "two_sided"))
        d = monitor._detector
        d._z, d._x_min, d._x_max = (mean_from(state, k) for k in ("z", "x_min", "x_max"))
        d._warning_detected = flag(state, "warning")
        monitor._restore_flag(state)
        return monitor
