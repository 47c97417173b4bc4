"""Lowering a process's CPU priority, at its start, before any thread starts: threads inherit
the nice value and the scheduling class of the thread that creates them."""

from __future__ import annotations

import os


def lower_cpu_priority(nice: int, idle: bool = False) -> None:
    """Add ``nice`` to this process's nice value; with ``idle``, enter Linux's ``SCHED_IDLE``
    class too, below every nice value: the process runs only on CPU nobody else wants (where
    the class does not exist, the nice value alone applies)."""
    os.nice(nice)
    if idle and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def cpu_priority() -> str:
    """This process's nice value and scheduling class, as the kernel has them (for a progress
    line that shows the lowering took effect).

    >>> cpu_priority().startswith("nice ")
    True
    """
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    names = {getattr(os, name, None): name for name in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE")}
    return f"nice {os.nice(0)}, {names.get(policy, f'policy {policy}')}"
