"""The sink process leaves what it built to start out of the garbage collector's passes and
collects young objects less often: with Python's defaults the collector took a quarter of its CPU
in a drain (docs/sink.md). Run in a child process: the collector's settings are the process's."""

from __future__ import annotations

import json
import subprocess
import sys

from stream_app.warehouse.service import GC_YOUNG_THRESHOLD

CHILD = """
import gc, json
from stream_app.settings import Settings
from stream_app.warehouse import service

held = [[i] for i in range(1000)]  # what start-up built: containers the collector tracks
service.build_ingest = lambda settings: object()
service.serve = lambda settings, ingest: print(json.dumps(
    {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}))
service.run_sink(Settings())
"""


def test_the_sink_freezes_its_start_up_heap_and_collects_young_objects_less_often() -> None:
    out = subprocess.run(  # our own interpreter
        [sys.executable, "-c", CHILD], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["frozen"] >= 1000
    assert seen["threshold"][0] == GC_YOUNG_THRESHOLD > 700
