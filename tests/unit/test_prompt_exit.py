"""A stopped process exits once its services are down: mode's worker would keep its event loop
turning a whole second more before closing it (``_sentinel_task``), so that every worker and sink
took a second longer to stop. Checked in a child process that runs a service the way ours run
(:func:`stream_app.thread_service.execute`), by the time between the two lines mode logs around
that last wait."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import datetime

from stream_app.thread_service import LAST_TURNS_S

PROBE = """
import logging, threading
import mode
import stream_app.thread_service as thread_service

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

class Idle:
    def __init__(self):
        self._stop = threading.Event()
    def run(self):
        print("running", flush=True)
        self._stop.wait()
    def stop(self):
        self._stop.set()

service = thread_service.ThreadService(Idle(), "idle-loop")
thread_service.execute(mode.Worker(service, override_logging=False), service)
"""


def logged_at(output: str, message: str) -> datetime:
    found = re.search(rf"^(\S+ \S+) .*{message}", output, re.MULTILINE)
    assert found, (message, output[-3000:])
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")


def test_a_stopped_process_closes_its_event_loop_without_mode_s_last_second() -> None:
    child = subprocess.Popen(  # our own interpreter on a literal script
        [sys.executable, "-c", PROBE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("running"):
                break
        child.send_signal(signal.SIGTERM)
        output, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, output[-3000:]
    last_wait = logged_at(output, "Closing event loop") - logged_at(output, "Gathering all futures")
    # mode's own wait is a sleep of 1.0 s there: anything near it means it is back
    assert last_wait.total_seconds() < LAST_TURNS_S + 0.5, (last_wait, output[-3000:])
