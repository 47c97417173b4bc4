"""A stop is bounded: a loop thread still busy :data:`STOP_DEADLINE_S` after the stop (a client
call outlasting its own timeouts) gets its stack written to the log, and the process exits with
:data:`EXIT_STOP_OVERDUE` instead of waiting for it, or for a supervisor's SIGKILL. Checked in a
child process, with a short deadline."""

from __future__ import annotations

import subprocess
import sys
import time

from stream_app.thread_service import EXIT_STOP_OVERDUE

PROBE = """
import asyncio, logging, time
import stream_app.thread_service as thread_service

logging.basicConfig(level=logging.INFO)

class Stuck:
    def run(self):
        while True:
            time.sleep(0.05)  # never looks at the stop: a blocking call that outlasts it
    def stop(self):
        pass

thread_service.STOP_DEADLINE_S = 1.0
service = thread_service.ThreadService(Stuck(), "stuck-loop")

async def main():
    await service.on_start()
    await service.on_stop()
    print("on_stop returned")  # never: the process exits from on_stop

asyncio.run(main())
"""


def test_a_loop_thread_busy_past_the_stop_deadline_ends_the_process_with_its_stack() -> None:
    started = time.monotonic()
    result = subprocess.run(  # our own interpreter on a literal script
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == EXIT_STOP_OVERDUE, output[-3000:]
    assert "on_stop returned" not in output
    assert "stuck-loop thread still busy" in output
    assert "Thread 0x" in output and " in run\n" in output, output[-3000:]  # the stuck stack
    assert took < 30, took  # the deadline, not an interpreter waiting for the thread
