"""``stream-app retrain`` runs one after the other, as the load beside a measured drain.

Each run is a child process started as the retrainer starts its runs (``python -m stream_app
retrain --json``: the command raises its own nice value by ``retrain_nice`` and trains on one
thread), the next one as soon as the last one ended, until the load is stopped; a run in flight
then is ended (SIGTERM) and counted as stopped. Each run's CPU time is read from ``/proc`` once it
exited and before it is reaped; its decision is the one its ``--json`` line printed (a run stopped
after it printed one has recorded it: its ``retrain_runs`` row was sent first).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from stream_app.devtools.bench.procstat import cpu_seconds
from stream_app.processes import ChildProcess
from stream_app.settings import Settings


@dataclass(frozen=True)
class RetrainRun:
    started: float  # wall clock, epoch seconds
    ended: float
    cpu_s: float
    decision: str | None  # as printed by the run; None: it printed none (stopped, or failed)
    stopped: bool  # ended by the load's stop, not by itself


def printed_decision(log: str) -> str | None:
    """The decision of the last ``retrain --json`` record in a run's output, if it printed one.

    >>> printed_decision('loading the window\\n{"run_id": "a1", "decision": "refused"}\\n')
    'refused'
    >>> printed_decision("Traceback (most recent call last):\\n") is None
    True
    """
    for line in reversed(log.splitlines()):
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            decision = record.get("decision") if isinstance(record, dict) else None
            if isinstance(decision, str):
                return decision
    return None


def coverage(runs: list[RetrainRun], start: float, end: float) -> float:
    """The share of ``[start, end]`` during which a run was going.

    >>> runs = [RetrainRun(0.0, 4.0, 1.0, "refused", False), RetrainRun(4.5, 20.0, 1.0, None, True)]
    >>> coverage(runs, 2.0, 12.0)
    0.95
    """
    covered = sum(max(0.0, min(end, r.ended) - max(start, r.started)) for r in runs)
    return round(covered / (end - start), 3) if end > start else 0.0


class RetrainLoad:
    """A context manager: ``stream-app retrain`` runs back to back on ``settings`` (whose sink
    serves the labelled window) while the ``with`` block lasts."""

    def __init__(self, settings: Settings, log_dir: Path, name: str) -> None:
        self._settings = settings
        self._log_dir = log_dir
        self._name = name
        self._lock = threading.Lock()  # a run is started, or ended, whole: never half-stopped
        self._stopping = False
        self._pid: int | None = None  # of the run going, until it exited
        self._error: list[BaseException] = []
        self.runs: list[RetrainRun] = []
        self._thread = threading.Thread(target=self._loop, name=f"{name}-load", daemon=True)

    def __enter__(self) -> RetrainLoad:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._lock:
            self._stopping = True
            if self._pid is not None:  # not reaped yet: the pid is still the run's
                os.kill(self._pid, signal.SIGTERM)
        self._thread.join(60)
        if self._error and exc is None:
            raise self._error[0]

    def _loop(self) -> None:
        try:
            while (run := self._run(len(self.runs) + 1)) is not None:
                self.runs.append(run)
        except BaseException as exc:  # reported by __exit__
            self._error.append(exc)

    def _run(self, number: int) -> RetrainRun | None:
        """One run, once it ended; None once the load is stopped."""
        with self._lock:
            if self._stopping:
                return None
            started = time.time()
            name = f"{self._name}-retrain-{number}"
            child = ChildProcess(name, ["retrain", "--json"], self._settings, self._log_dir)
            self._pid = child.pid
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet
        ended, cpu_s = time.time(), cpu_seconds(child.pid)
        with self._lock:
            self._pid, stopped = None, self._stopping
        child.stop()
        decision = printed_decision(child.log_path.read_text(errors="replace"))
        return RetrainRun(started, ended, round(cpu_s, 2), decision, stopped)
