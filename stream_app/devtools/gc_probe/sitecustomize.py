"""A probe of the cyclic garbage collector's full collections, in every Python process started
with this directory on ``PYTHONPATH`` (``sitecustomize`` is imported at start-up):

    PYTHONPATH=stream_app/devtools/gc_probe STREAM_APP_GC_PROBE_DIR=/tmp/gc \\
        .venv/bin/stream-app bench latency --latency-seconds 60

Each process appends to ``gc-<pid>.log`` in ``STREAM_APP_GC_PROBE_DIR`` (the working directory
if unset): its command line, then one line per full (generation 2) collection, with its wall
clock end (epoch seconds), its duration in ms and the objects it freed. A full collection holds
the GIL, so its duration is a stall of every thread of the process.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

_log = (Path(os.environ.get("STREAM_APP_GC_PROBE_DIR", ".")) / f"gc-{os.getpid()}.log").open(
    "a", buffering=1
)
_log.write(" ".join(sys.argv) + "\n")
_started: list[float] = [0.0]


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    if info["generation"] != 2:
        return
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took_ms = (time.perf_counter() - _started[0]) * 1000
    _log.write(f"{time.time():.3f} full {took_ms:.1f} ms, {info['collected']} freed\n")


gc.callbacks.append(_on_collection)
