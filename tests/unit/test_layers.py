"""The sink process loads neither the worker nor a model library (`docs/layers.md`).

`lint-imports` checks the import graph statically; this checks what a fresh interpreter actually
loads for `stream-app sink` (the CLI module, then the sink service).
"""

from __future__ import annotations

import subprocess
import sys

WORKER_ONLY = (
    "lightgbm",
    "river",
    "stream_app.scoring",
    "stream_app.control",
    "stream_app.devtools.generator",
)

PROBE = f"""
import sys
import stream_app.cli
import stream_app.warehouse.service
loaded = sorted(m for m in sys.modules if m.startswith({WORKER_ONLY!r}))
print("\\n".join(loaded))
"""


def test_the_sink_process_loads_neither_the_worker_nor_a_model_library() -> None:
    result = subprocess.run(  # our own interpreter, a fixed probe
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split() == []
