"""Memory and CPU time of a running process, from ``/proc/<pid>/`` (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

from stream_app.devtools.bench.errors import BenchError

TICKS = os.sysconf("SC_CLK_TCK")


def status_mb(pid: int, field: str) -> float:
    """``VmHWM`` (peak resident set so far), ``VmRSS`` (current) or ``RssAnon`` (its private,
    anonymous part: heap and stacks, without the pages of mapped files such as shared libraries,
    whose residency follows the page cache), in MB (MiB).

    >>> status_mb(os.getpid(), "VmHWM") >= status_mb(os.getpid(), "VmRSS")
    True
    >>> status_mb(os.getpid(), "VmRSS") > status_mb(os.getpid(), "RssAnon") > 0
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


def stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (``fields[1]`` is the ppid)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User + system CPU seconds of a process (and of the children it reaped, if asked).

    >>> cpu_seconds(os.getpid()) > 0
    True
    """
    fields = stat_fields(pid)
    return sum(int(v) for v in fields[11 : 15 if with_children else 13]) / TICKS
