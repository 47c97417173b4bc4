"""Scoring workers (one unless asked) and the warehouse sink as child processes, on one phase's
settings; several workers share the phase's consumer group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stream_app.devtools.bench.procstat import cpu_seconds, status_mb, thread_cpu_seconds
from stream_app.processes import ChildProcess, get_json, wait_until
from stream_app.settings import Settings
from stream_app.warehouse.sql import query_rows

#: for a child to serve its web pages: chDB and the model load slowly on a busy machine
START_TIMEOUT_S = 300.0


class Deployment:
    """The workers and the sink of one phase; ``stop`` ends what was started (SIGTERM, SIGKILL).

    Workers after the first get a ``worker_id`` of their own; every child binds port 0 and
    reports the port it got.
    """

    def __init__(self, settings: Settings, name: str, log_dir: Path, workers: int = 1) -> None:
        self.settings = settings
        self.name = name
        self.log_dir = log_dir
        self.worker_settings = [settings] + [
            settings.model_copy(update={"worker_id": f"{settings.worker_id}-{n}"})
            for n in range(2, workers + 1)
        ]
        self.children: list[ChildProcess] = []

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the sink and the workers at once: none gets a head start on a backlog. Return
        once each serves (each within ``timeout_s``), :attr:`settings` and
        :attr:`worker_settings` then holding the ports they bound."""
        name, settings = self.name, self.settings
        self.children.append(ChildProcess(f"{name}-sink", ["sink"], settings, self.log_dir))
        for n, worker in enumerate(self.worker_settings, 1):
            suffix = "" if n == 1 else f"-{n}"
            self.children.append(
                ChildProcess(f"{name}-worker{suffix}", ["worker"], worker, self.log_dir)
            )
        sql_port = self.sink.web_port(timeout_s)
        self.worker_settings = [
            worker.model_copy(
                update={"sql_port": sql_port, "worker_web_port": child.web_port(timeout_s)}
            )
            for worker, child in zip(self.worker_settings, self.workers, strict=True)
        ]
        self.settings = self.worker_settings[0]

    @property
    def sink(self) -> ChildProcess:
        return self.children[0]

    @property
    def worker(self) -> ChildProcess:
        return self.children[1]

    @property
    def workers(self) -> list[ChildProcess]:
        return self.children[1:]

    def check_alive(self) -> None:
        for child in self.children:
            child.check_alive()

    def worker_health(self, index: int = 0) -> dict[str, Any] | None:
        port = self.worker_settings[index].worker_web_port
        health: dict[str, Any] | None = get_json(f"http://127.0.0.1:{port}/health")
        return health

    def workers_health(self) -> list[dict[str, Any] | None]:
        return [self.worker_health(index) for index in range(len(self.worker_settings))]

    def sink_health(self) -> dict[str, Any] | None:
        health: dict[str, Any] | None = get_json(f"{self.settings.sql_url}/health")
        return health

    def query(self, sql: str) -> list[list[Any]]:
        """Rows of a read-only query through the sink's endpoint (never opening the chDB
        directory, which belongs to the sink)."""
        self.sink.check_alive()
        return query_rows(self.settings, sql)[1]

    def stored_predictions(self) -> int:
        return int(self.query("SELECT count() FROM predictions_raw")[0][0])

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Until the sink answers and the workers hold every input partition, each some."""

        def ready() -> bool:
            self.check_alive()
            workers = self.workers_health()
            assigned = [len(w["assigned"]) if w else 0 for w in workers]
            return (
                self.sink_health() is not None
                and min(assigned) > 0
                and sum(assigned) == self.settings.topics.partitions
            )

        wait_until(ready, timeout_s, "the workers and the sink to be ready", interval_s=0.1)

    def peak_rss_mb(self) -> dict[str, float]:
        return {
            "worker": status_mb(self.worker.pid, "VmHWM"),
            "sink": status_mb(self.sink.pid, "VmHWM"),
        }

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds since each process started (its start-up included)."""
        return {
            "worker": round(cpu_seconds(self.worker.pid), 2),
            "sink": round(cpu_seconds(self.sink.pid), 2),
        }

    def cpu_seconds_since(self, before: dict[str, float]) -> dict[str, float]:
        """CPU seconds of the worker and the sink since :meth:`cpu_seconds` gave ``before``."""
        now = self.cpu_seconds()
        return {name: round(now[name] - before.get(name, 0.0), 2) for name in now}

    def thread_cpu_seconds(self) -> dict[str, dict[str, float]]:
        """CPU seconds of the worker's and the sink's live threads, by thread name."""
        return {
            "worker": thread_cpu_seconds(self.worker.pid),
            "sink": thread_cpu_seconds(self.sink.pid),
        }

    def workers_cpu_seconds(self) -> float:
        """CPU seconds of all the workers together, since each started."""
        return sum(cpu_seconds(worker.pid) for worker in self.workers)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
