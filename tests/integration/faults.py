"""The figures each test of the fault suite (marker ``faults``, ``make test-faults``) reports,
through the ``fault_figures`` fixture; it ends with the ledger check (``assert_ledger``), which
fills in what was lost, duplicated and replayed.

The figures of a run are printed at its end as the table of ``docs/faults.md`` and, when the
environment variable ``FAULT_FIGURES`` names a file, written there as JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stream_app.devtools.bench.procstat import status_mb

STARTUP_S = 300.0  # for a process to serve: minutes where eight suites share two cores


@dataclass
class FaultFigures:
    """One fault test's figures; ``None``: not measured by that test."""

    fault: str
    recovery_s: float | None = None  # from the fault's end (or the kill) to scoring/storing again
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # VmHWM by process
    replayed: int | None = None  # prediction records beyond one per valid event (a replay)
    lost: int | None = None
    duplicated: int | None = None
    notes: dict[str, float] = field(default_factory=dict)  # fault-specific figures

    def peak_rss(self, name: str, pid: int) -> None:
        """Note the peak resident set of a running process (call it just before stopping it)."""
        self.peak_rss_mb[name] = round(status_mb(pid, "VmHWM"), 1)


def table(rows: list[FaultFigures]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| fault | recovery (s) | peak RSS (MB) | replayed | lost | duplicated | other |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in rows:
        rss = ", ".join(f"{name} {mb:.0f}" for name, mb in f.peak_rss_mb.items())
        notes = ", ".join(f"{name} {value:g}" for name, value in f.notes.items())
        recovery = "" if f.recovery_s is None else f"{f.recovery_s:.1f}"
        cells = [f.fault, recovery, rss, f.replayed, f.lost, f.duplicated, notes]
        lines.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def answered(
    health: Callable[[], dict[str, Any] | None], timeout_s: float = 60.0
) -> dict[str, Any]:
    """The first answer of a ``/health`` getter: a loaded machine can miss the client's 2 s."""
    deadline = time.monotonic() + timeout_s
    while (document := health()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no /health answer within {timeout_s} s")
        time.sleep(0.2)
    return document
