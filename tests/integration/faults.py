"""The figures each test of the fault suite (marker ``faults``, ``make test-faults``) reports,
through the ``fault_figures`` fixture; it ends with the ledger check (``assert_ledger``), which
fills in what was lost, duplicated and replayed.

The figures of a run are printed at its end as the table of ``docs/faults.md`` and, when the
environment variable ``FAULT_FIGURES`` names a file, written there as JSON (:class:`FaultSummary`,
which reads them from the tests' reports: under pytest-xdist the tests run in worker processes
and the summary is written by the controller).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stream_app.devtools.bench.procstat import status_mb

#: the name of the user property that carries a fault test's figures in its teardown report
FIGURES_PROPERTY = "fault_figures"
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


class FaultSummary:
    """A pytest plugin: the figures of the run's fault tests, from their reports, printed at the
    end (and written to ``$FAULT_FIGURES``)."""

    def __init__(self) -> None:
        self.rows: list[FaultFigures] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            self.rows += [
                FaultFigures(**v) for k, v in report.user_properties if k == FIGURES_PROPERTY
            ]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        terminalreporter.write_sep("=", "fault suite figures (docs/faults.md)")
        terminalreporter.write_line(table(self.rows))
        if target := os.environ.get("FAULT_FIGURES"):
            Path(target).write_text(json.dumps([asdict(f) for f in self.rows], indent=2) + "\n")
            terminalreporter.write_line(f"written to {target}")


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
