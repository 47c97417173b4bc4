"""The loop services (worker, sink) freeze their start-up heap out of the cyclic garbage
collector before their loop thread starts: a full collection then examines only what the loop
made since, where it re-examined every module, the model and the framework (150 to 230 ms of CPU
per full collection on the 2-vCPU AMD EPYC host, a stall of the scoring thread). Checked in a
child process: a frozen heap stays frozen for the rest of the process."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import asyncio, gc, json, threading, weakref
from stream_app.thread_service import ThreadService

class Idle:
    def __init__(self): self.stop_event = threading.Event()
    def run(self): self.stop_event.wait()
    def stop(self): self.stop_event.set()

class Node:
    pass

kept = Node()  # alive at start-up
garbage = Node(); garbage.self = garbage  # a cycle nobody refers to
dead = weakref.ref(garbage); del garbage
gc.disable()  # no collection on its own before the service starts
work = Idle()
service = ThreadService(work, "probe-loop")
asyncio.run(service.on_start())
tracked = {id(o) for o in gc.get_objects()}  # the generations a collection examines
work.stop(); service._thread.join(5)
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "kept_examined": id(kept) in tracked,
    "garbage_freed": dead() is None,
}))
"""


def test_start_freezes_the_startup_heap_after_collecting_its_garbage() -> None:
    out = subprocess.run(  # our own interpreter on a literal script
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["frozen"] > 10_000, result  # the imports alone are tens of thousands
    assert not result["kept_examined"], result
    assert result["garbage_freed"], result  # collected before the freeze, not frozen forever
