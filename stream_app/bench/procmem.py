"""Resident memory of a running process, from ``/proc/<pid>/status`` (Linux)."""

from __future__ import annotations

from pathlib import Path

from stream_app.bench.errors import BenchError


def status_mb(pid: int, field: str) -> float:
    """``VmHWM`` (peak resident set so far) or ``VmRSS`` (current), in MB (MiB).

    >>> import os
    >>> status_mb(os.getpid(), "VmHWM") >= status_mb(os.getpid(), "VmRSS") > 0
    True
    """
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        raise BenchError(f"cannot read the memory of process {pid}: {exc}") from exc
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    raise BenchError(f"no {field} in /proc/{pid}/status")
