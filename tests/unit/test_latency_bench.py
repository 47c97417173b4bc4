"""The benchmark's latency phase stops waiting after its grace period and keeps what it measured."""

from __future__ import annotations

import queue
import threading
from types import SimpleNamespace
from typing import Any

from stream_app.devtools.bench.latency import Shortfall, _run
from stream_app.devtools.bench.options import LatencyOptions
from stream_app.devtools.bench.visibility import VisibilityPoller


class Warehouse:
    """A deployment whose warehouse shows only the events in ``stored``."""

    def __init__(self, stored: set[str]) -> None:
        self.stored = stored

    def check_alive(self) -> None:
        pass

    def query(self, sql: str) -> list[tuple[str]]:
        return [(event_id,) for event_id in self.stored if f"'{event_id}'" in sql]


def _threads(sent: int, arrived: int, samples: list[str]) -> tuple[Any, Any]:
    """A finished paced producer that sent ``sent`` events and a checker that saw ``arrived``
    predictions of them, with ``samples`` queued for the visibility poller."""
    finished = threading.Event()
    finished.set()
    producer = SimpleNamespace(name="producer", failure=None, finished=finished, sent=sent)
    checker = SimpleNamespace(
        name="checker",
        failure=None,
        arrivals=[None] * arrived,
        samples=queue.SimpleQueue(),
    )
    for created_ms, event_id in enumerate(samples):
        checker.samples.put((event_id, created_ms))
    return producer, checker


def _measure(warehouse: Warehouse, producer: Any, checker: Any) -> tuple[Shortfall, list[str]]:
    said: list[str] = []
    poller = VisibilityPoller(warehouse)  # type: ignore[arg-type]  # the two calls it makes
    options = LatencyOptions(seconds=0.0, grace_s=0.3, poll_interval_s=0.01)
    shortfall = _run(warehouse, checker, producer, poller, options, said.append)  # type: ignore[arg-type]
    return shortfall, said


def test_samples_never_visible_are_counted_not_raised() -> None:
    warehouse = Warehouse(stored={"e1"})
    producer, checker = _threads(sent=100, arrived=97, samples=["e1", "e2", "e3"])
    shortfall, said = _measure(warehouse, producer, checker)
    assert shortfall == Shortfall(predictions=3, samples=2)
    assert said and "stopped waiting" in said[-1]


def test_a_complete_run_misses_nothing() -> None:
    warehouse = Warehouse(stored={"e1", "e2"})
    producer, checker = _threads(sent=100, arrived=100, samples=["e1", "e2"])
    shortfall, said = _measure(warehouse, producer, checker)
    assert shortfall == Shortfall()
    assert not said
