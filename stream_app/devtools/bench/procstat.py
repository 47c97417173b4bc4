"""Memory and CPU time of a running process, from ``/proc/<pid>/`` (Linux)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
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


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU seconds of a process's live threads, summed by thread name (librdkafka
    names its threads ``rdk:main``, ``rdk:broker1``...; Python's threads keep the process's).

    >>> sum(thread_cpu_seconds(os.getpid()).values()) > 0
    True
    """
    seconds: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            text = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        seconds[name] = seconds.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


@contextmanager
def rss_mb(pid: int, into: dict[str, float]) -> Iterator[None]:
    """Fill ``into`` with the peak (``peak``) and final (``end``) resident set of ``pid`` over the
    ``with`` block, in MB: the peak is reset at the start (``clear_refs``), so it is this block's.

    >>> before = bytearray(256 << 20); del before  # a higher peak before the block is not its
    >>> into: dict[str, float] = {}
    >>> with rss_mb(os.getpid(), into):
    ...     block = bytearray(64 << 20); del block
    >>> 60 < into["peak"] - into["end"] < 128
    True
    """
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux ≥ 4.0)
    try:
        yield
    finally:
        into["peak"] = round(status_mb(pid, "VmHWM"), 1)
        into["end"] = round(status_mb(pid, "VmRSS"), 1)
