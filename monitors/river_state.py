"""Reading and writing the state of River's detectors, field by field, without pickle.

River's pure-Python detectors keep their state in a few attributes (running means, sums, flags);
``RiverMonitor`` holds one such detector and each subclass names the fields it saves. A state is
only valid for the River version that wrote it: restoring it under another one is refused.
"""

from __future__ import annotations

import base64
import math
from importlib.metadata import version
from typing import Any

from river import stats

from monitors.base import JSONValue, MonitorState, MonitorStateError, check_kind, flag, floats

#: the River version a state is valid for
RIVER_VERSION = version("river")


def mean_state(mean: stats.Mean) -> list[JSONValue]:
    """A running mean as ``[n, mean]``."""
    return [float(mean.n), float(mean.get())]


def mean_from(state: MonitorState, key: str) -> stats.Mean:
    """The running mean ``mean_state`` saved under ``key``."""
    n, value = floats(state, key)
    return stats.Mean._from_state(n, value)


def rust_state(native: Any) -> str:
    """A Rust-backed River object's own serialisation (bincode: plain data), base64."""
    return base64.b64encode(bytes(native.__getstate__())).decode("ascii")


def restore_rust(native: Any, state: MonitorState, key: str) -> None:
    """Give a Rust-backed River object the state ``rust_state`` saved under ``key``."""
    native.__setstate__(base64.b64decode(str(state[key])))


def finite_or_none(value: float) -> float | None:
    """JSON has no infinity: a detector's initial minimum (``inf``) is saved as ``None``."""
    return value if math.isfinite(value) else None


def float_or(value: float | None, default: float) -> float:
    """The inverse of ``finite_or_none``."""
    return default if value is None else value


class RiverMonitor:
    """A ``Monitor`` over one River drift detector; subclasses save and restore its fields."""

    kind: str

    def __init__(self, detector: Any) -> None:
        self._detector = detector

    def update(self, value: float) -> None:
        self._detector.update(value)

    @property
    def drift_detected(self) -> bool:
        return bool(self._detector.drift_detected)

    def reset(self) -> None:
        self._detector._reset()

    def _header(self) -> MonitorState:
        """What every saved state starts with: the kind, the River version, the last flag."""
        return {
            "kind": self.kind,
            "river": RIVER_VERSION,
            "drift": self.drift_detected,
        }

    @classmethod
    def _check(cls, state: MonitorState) -> None:
        check_kind(state, cls.kind)
        if state.get("river") != RIVER_VERSION:
            raise MonitorStateError(
                f"state saved under River {state.get('river')}, running {RIVER_VERSION}"
            )

    def _restore_flag(self, state: MonitorState) -> None:
        self._detector._drift_detected = flag(state, "drift")
