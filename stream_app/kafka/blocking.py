"""Client calls that can block past their own timeouts, run where a stop need not wait for them.

librdkafka bounds most calls, not all. Measured on the local broker (a consumer committing every
50 ms, the broker stopped under it): a synchronous ``commit`` in flight when the broker goes away
waits for its answer until the broker is back (24.5 s in one run, over 95 s in another, where the
broker stayed away), and a ``close`` meanwhile blocked for 60 s; a ``commit_transaction`` given
5 s ran past 20 s. A process asked to stop must not wait for them: such a call runs on a daemon
thread (:func:`on_daemon_thread`), and its caller waits for it with a bound
(:func:`wait_bounded`); a call given up on is left to finish, or to die with the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

T = TypeVar("T")

#: how often a wait looks at its deadline and at the stop
WAIT_SLICE_S = 0.1


def never() -> bool:
    """A ``stopping`` for a process that is never asked to stop while it waits."""
    return False


class Abandoned(Exception):
    """A call still running when its caller stopped waiting for it."""


def on_daemon_thread(call: Callable[[], T], name: str) -> Future[T]:
    """Start ``call()`` on a daemon thread of its own: the process can exit while it blocks."""
    future: Future[T] = Future()

    def run() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(call())
        except BaseException as exc:  # handed to the waiter, who decides
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def wait_bounded(
    future: Future[T],
    what: str,
    deadline: float = float("inf"),
    stopping: Callable[[], bool] = never,
    stop_grace_s: float = 2.0,
) -> T:
    """The result of ``future`` (its exception raised), waited for until the monotonic
    ``deadline``, or for ``stop_grace_s`` more once ``stopping()`` says so; past either,
    :class:`Abandoned`."""
    while True:
        try:
            return future.result(timeout=WAIT_SLICE_S)
        except FutureTimeout:
            now = time.monotonic()
            if now < deadline and stopping():
                deadline = min(deadline, now + stop_grace_s)
            if now > deadline:
                raise Abandoned(f"{what} still running, given up on") from None


def call_bounded(call: Callable[[], T], what: str, timeout_s: float) -> T:
    """``call()`` on a daemon thread, waited for ``timeout_s`` at most (:class:`Abandoned`)."""
    return wait_bounded(on_daemon_thread(call, what), what, time.monotonic() + timeout_s)
