"""Where the CPUs went while a phase ran: this benchmark's processes, the broker, everyone else.

The development machine is shared (two cores; other people's tests run on it): a figure measured
while something else was busy needs saying so. ``other_cpu_share`` = CPU time the kernel counted
in process context (user, nice, system) minus the CPU time of this process's tree (itself, the
broker, the worker, the sink, and the children it already reaped). Interrupt time (loopback
networking is mostly softirq, and mostly ours) and time the hypervisor took are reported apart.
All shares are of the whole machine's CPU capacity over the window (0..1).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stream_app.devtools.bench.procstat import TICKS, cpu_seconds, rss_mb, stat_fields

BROKER_COMMAND = "java"  # the local broker is a JVM started by the benchmark itself


def _machine_seconds() -> tuple[float, float, float]:
    """(process busy, interrupt, steal) CPU seconds of all CPUs since boot, from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system) / TICKS, (irq + softirq) / TICKS, steal / TICKS


def _our_seconds() -> tuple[float, float]:
    """CPU seconds of this process's tree (with reaped children), and of the broker among it."""
    root = os.getpid()
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    broker = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fields = stat_fields(pid)
            seconds[pid] = cpu_seconds(pid, with_children=True)
            is_broker = (entry / "comm").read_text().strip() == BROKER_COMMAND
        except (OSError, ValueError):  # exited meanwhile
            continue
        parents[pid] = int(fields[1])
        if is_broker and parents[pid] == root:
            broker = seconds[pid]

    def in_tree(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(s for pid, s in seconds.items() if in_tree(pid)), broker


def _sample() -> tuple[float, ...]:
    return (time.monotonic(), *_machine_seconds(), *_our_seconds())


@contextmanager
def cpu_share(into: dict[str, float]) -> Iterator[None]:
    """Fill ``into`` with the CPU shares of the ``with`` block's window."""
    wall0, busy0, irq0, steal0, ours0, broker0 = _sample()
    try:
        yield
    finally:
        wall1, busy1, irq1, steal1, ours1, broker1 = _sample()
        capacity = (wall1 - wall0) * (os.cpu_count() or 1)
        if capacity > 0:
            ours = ours1 - ours0
            into["own_cpu_share"] = round(ours / capacity, 3)
            into["broker_cpu_share"] = round((broker1 - broker0) / capacity, 3)
            into["other_cpu_share"] = round(max(0.0, busy1 - busy0 - ours) / capacity, 3)
            into["irq_share"] = round((irq1 - irq0) / capacity, 3)
            into["steal_share"] = round((steal1 - steal0) / capacity, 3)


@contextmanager
def phase_usage(
    broker_pid: int, shares: dict[str, float], broker_rss: dict[str, float]
) -> Iterator[None]:
    """Fill ``shares`` with the ``with`` block's CPU shares (:func:`cpu_share`) and
    ``broker_rss`` with the broker's peak and final RSS over it (:func:`rss_mb`)."""
    with cpu_share(shares), rss_mb(broker_pid, broker_rss):
        yield
