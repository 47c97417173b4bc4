"""The interface every monitor implements, River-shaped, and its saved state.

A monitor reads one value per event (an error bit, a score, one feature's value), raises
``drift_detected`` on the update that detects a change (and only that one, as River's detectors
do), and starts afresh on the next update. Its state is a JSON-able dict, never a pickle: the
project never unpickles. ``from_state`` rebuilds a monitor that gives the same future outputs
as the one saved.

>>> from monitors.errors import AdwinMonitor
>>> import json
>>> monitor = AdwinMonitor()
>>> for bit in [0, 1] * 100:
...     monitor.update(bit)
>>> copy = AdwinMonitor.from_state(json.loads(json.dumps(monitor.save())))
>>> copy.save() == monitor.save()
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, Self, TypeAlias

from stream_app.errors import StreamAppError

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
MonitorState: TypeAlias = dict[str, JSONValue]


class MonitorStateError(StreamAppError):
    """A saved state belongs to another kind of monitor or to another River version."""


class Detector(Protocol):
    """What reads a stream and flags changes: River's detectors, a monitor, a benchmark's dummy."""

    def update(self, value: float) -> None:
        """Read the next value of the stream."""
        ...

    @property
    def drift_detected(self) -> bool:
        """True on the update that detected a change."""
        ...


class Monitor(Detector, Protocol):
    """One drift detector over one stream of values, with a state that can be saved."""

    #: what the monitor is, as saved in its state and in a detection row ("adwin", "psi", ...)
    kind: str

    def reset(self) -> None:
        """Forget everything read so far (the parameters stay)."""
        ...

    def save(self) -> MonitorState:
        """The parameters and the state, JSON-able."""
        ...

    @classmethod
    def from_state(cls, state: MonitorState) -> Self:
        """A monitor that continues exactly where the saved one stood."""
        ...


def alarm_positions(detector: Detector, values: Iterable[float]) -> list[int]:
    """Feed ``values`` to ``detector``; the positions at which it raised a drift.

    >>> from monitors.features import PsiMonitor
    >>> monitor = PsiMonitor([0.0], [0.5, 0.5], window=4, threshold=0.1)
    >>> alarm_positions(monitor, [-1, 1, -1, 1, 1, 1, 1, 1])
    [7]
    """
    alarms = []
    for i, value in enumerate(values):
        detector.update(value)
        if detector.drift_detected:
            alarms.append(i)
    return alarms


def check_kind(state: MonitorState, kind: str) -> None:
    """Refuse a state saved by another kind of monitor."""
    if state.get("kind") != kind:
        raise MonitorStateError(f"a {state.get('kind')!r} state cannot restore a {kind!r} monitor")


def number(state: MonitorState, key: str) -> float:
    """The number saved under ``key``."""
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MonitorStateError(f"{key}: expected a number, got {value!r}")
    return float(value)


def floats(state: MonitorState, key: str) -> list[float]:
    """The list of numbers saved under ``key``."""
    value = state.get(key)
    if not isinstance(value, list):
        raise MonitorStateError(f"{key}: expected a list, got {value!r}")
    return [number({key: v}, key) for v in value]


def integer(state: MonitorState, key: str) -> int:
    """The whole number saved under ``key``."""
    value = number(state, key)
    if not value.is_integer():
        raise MonitorStateError(f"{key}: expected a whole number, got {value!r}")
    return int(value)


def flag(state: MonitorState, key: str) -> bool:
    """The boolean saved under ``key``."""
    value = state.get(key)
    if not isinstance(value, bool):
        raise MonitorStateError(f"{key}: expected true or false, got {value!r}")
    return value


def number_or_none(state: MonitorState, key: str) -> float | None:
    """The number saved under ``key``, or ``None`` (JSON's stand-in for an infinity)."""
    return None if state.get(key) is None else number(state, key)
