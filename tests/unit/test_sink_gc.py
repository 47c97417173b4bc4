"""The sink process collects young objects less often: with Python's defaults the collector took
a quarter of its CPU in a drain (docs/sink.md; what start-up built is frozen by the loop's
ThreadService, ``tests/unit/test_startup_heap.py``). Run in a child process: the collector's
settings are the process's."""

from __future__ import annotations

import json
import subprocess
import sys

from stream_app.warehouse.service import GC_YOUNG_THRESHOLD

CHILD = """
import gc, json
from stream_app.settings import Settings
from stream_app.warehouse import service

service.build_answering = lambda settings, port, doing, build: (build(), None)
service.build_ingest = lambda settings: object()
service.serve = lambda settings, ingest, listener: print(json.dumps(
    {"threshold": gc.get_threshold()}))
service.run_sink(Settings(sql_port=0))
"""


def test_the_sink_collects_young_objects_less_often() -> None:
    out = subprocess.run(  # our own interpreter
        [sys.executable, "-c", CHILD], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["threshold"][0] == GC_YOUNG_THRESHOLD > 700
