"""How much CPU the rest of the machine took while a phase ran.

The development machine is shared (two cores; other people's tests run on it): a figure measured
while something else was busy needs saying so. Other processes' share = CPU time the kernel
counted as busy minus the CPU time of this process's tree (itself, the broker, the worker, the
sink, and the children it already reaped), over the CPU capacity of the window. Loopback network
work the kernel books as interrupts counts as "other", so an idle machine shows a few percent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _machine_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of all CPUs since boot, from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / TICKS, steal / TICKS


def _tree_seconds(root: int) -> float:
    """CPU seconds of ``root`` and its descendants, with the children they reaped."""
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        seconds[pid] = sum(int(v) for v in fields[11:15]) / TICKS  # utime stime cutime cstime

    def in_tree(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(s for pid, s in seconds.items() if in_tree(pid))


def _sample() -> tuple[float, float, float, float]:
    busy, steal = _machine_seconds()
    return time.monotonic(), busy, steal, _tree_seconds(os.getpid())


@contextmanager
def cpu_share(into: dict[str, float]) -> Iterator[None]:
    """Fill ``into`` with ``other_cpu_share`` and ``steal_share`` of the ``with`` block's window."""
    wall0, busy0, steal0, ours0 = _sample()
    try:
        yield
    finally:
        wall1, busy1, steal1, ours1 = _sample()
        capacity = (wall1 - wall0) * (os.cpu_count() or 1)
        if capacity > 0:
            other = (busy1 - busy0) - (ours1 - ours0)
            into["other_cpu_share"] = round(max(0.0, other) / capacity, 3)
            into["steal_share"] = round((steal1 - steal0) / capacity, 3)
