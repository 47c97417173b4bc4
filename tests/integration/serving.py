"""Run a ``mode`` Service (e.g. the sink's web server) in a thread with its own event loop, for
tests that drive the rest of the sink themselves."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import mode

S = TypeVar("S", bound=mode.Service)


@contextmanager
def running(build: Callable[[asyncio.AbstractEventLoop], S]) -> Iterator[S]:
    """``build(loop)`` started on a loop of its own; stopped (and the loop closed) on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-service", daemon=True)
    thread.start()
    service = build(loop)
    asyncio.run_coroutine_threadsafe(service.start(), loop).result(30)
    try:
        yield service
    finally:
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
