"""``in_thread``, the fixture helper every running worker and sink of the suite goes through:
a loop that does not stop, or that raised, fails the test with its own error (issue 13)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.integration.conftest import in_thread

pytestmark = pytest.mark.integration


class Loop:
    """A stand-in for ``ScoringLoop`` / ``WarehouseIngest``: ``run`` until ``stop``."""

    def __init__(self, fails: bool = False, stops: bool = True) -> None:
        self._stopping = threading.Event()
        self._release = threading.Event()
        self._fails, self._stops = fails, stops

    def run(self) -> None:
        if self._fails:
            raise RuntimeError("the loop's own failure")
        self._stopping.wait()
        if not self._stops:
            self._release.wait(30)

    def stop(self) -> None:
        self._stopping.set()

    def release(self) -> None:
        self._release.set()


def started(loop: Loop, **options: Any) -> Any:
    return in_thread(loop, **options)  # type: ignore[arg-type]


def test_a_loop_that_stops_passes() -> None:
    with started(Loop()) as running:
        assert running.thread.is_alive()
    assert not running.thread.is_alive()


def test_a_loop_that_does_not_stop_fails_the_test() -> None:
    loop = Loop(stops=False)
    with (
        pytest.raises(AssertionError, match=r"did not stop within 0\.5 s"),
        started(loop, stop_timeout_s=0.5),
    ):
        pass
    loop.release()


def test_the_loops_own_exception_is_raised_even_when_the_body_fails() -> None:
    with (
        pytest.raises(RuntimeError, match="the loop's own failure") as raised,
        started(Loop(fails=True)) as running,
    ):
        running.thread.join(10)
        raise AssertionError("what the body saw: no output")
    assert isinstance(raised.value.__context__, AssertionError)  # and the body's failure too
