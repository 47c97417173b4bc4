"""Run a ``mode`` Service (e.g. the sink's web server) in a thread with its own event loop, for
tests that drive the rest of the sink themselves; run a worker or a sink whose loop dies."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import mode

from stream_app.processes import settings_env
from stream_app.settings import Settings

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


DYING_LOOP = """
import logging
import socket
import sys
import time
from stream_app.settings import Settings
from {stats_module} import {stats_class} as Stats
from {service_module} import serve


class DyingLoop:
    \"\"\"A loop whose thread ends after a few seconds without being asked to stop.\"\"\"

    stats = Stats()

    def run(self):
        time.sleep(3)
        if sys.argv[1] == "raises":
            raise RuntimeError("the loop broke on purpose")

    def stop(self):
        pass


logging.basicConfig()  # as the command line does
serve(Settings(), DyingLoop(), socket.create_server(("127.0.0.1", 0)))
"""


def run_dying_loop(
    service_module: str, stats: type, settings: Settings, how: str
) -> subprocess.CompletedProcess[bytes]:
    """``serve`` of ``service_module`` run with a loop that raises (``how="raises"``) or returns
    after 3 s, in a process of its own; ``stats`` is the class of the loop's ``stats``."""
    script = DYING_LOOP.format(
        stats_module=stats.__module__, stats_class=stats.__name__, service_module=service_module
    )
    return subprocess.run(  # our own interpreter
        [sys.executable, "-c", script, how],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        timeout=120,
    )
