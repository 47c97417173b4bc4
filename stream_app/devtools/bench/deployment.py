"""One scoring worker and the warehouse sink as child processes, on one phase's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stream_app.devtools.bench.procstat import cpu_seconds, status_mb
from stream_app.processes import ChildProcess, get_json, wait_until
from stream_app.settings import Settings
from stream_app.warehouse.sql import query_rows


class Deployment:
    """The worker and the sink of one phase; ``stop`` ends what was started (SIGTERM, SIGKILL)."""

    def __init__(self, settings: Settings, name: str, log_dir: Path) -> None:
        self.settings = settings
        self.name = name
        self.log_dir = log_dir
        self.children: list[ChildProcess] = []

    def start(self) -> None:
        """Start the sink and the worker at once: neither gets a head start on a backlog. Return
        once both serve, :attr:`settings` then holding the ports they bound."""
        name, settings = self.name, self.settings
        self.children.append(ChildProcess(f"{name}-sink", ["sink"], settings, self.log_dir))
        self.children.append(ChildProcess(f"{name}-worker", ["worker"], settings, self.log_dir))
        self.settings = settings.model_copy(
            update={"sql_port": self.sink.web_port(), "worker_web_port": self.worker.web_port()}
        )

    @property
    def sink(self) -> ChildProcess:
        return self.children[0]

    @property
    def worker(self) -> ChildProcess:
        return self.children[1]

    def check_alive(self) -> None:
        for child in self.children:
            child.check_alive()

    def worker_health(self) -> dict[str, Any] | None:
        health: dict[str, Any] | None = get_json(
            f"http://127.0.0.1:{self.settings.worker_web_port}/health"
        )
        return health

    def sink_health(self) -> dict[str, Any] | None:
        health: dict[str, Any] | None = get_json(f"{self.settings.sql_url}/health")
        return health

    def query(self, sql: str) -> list[list[Any]]:
        """Rows of a read-only query through the sink's endpoint.

        Only call once :meth:`sink_health` answered: ``query_rows`` falls back to opening the
        chDB directory itself, which belongs to the sink.
        """
        self.sink.check_alive()
        return query_rows(self.settings, sql)[1]

    def stored_predictions(self) -> int:
        return int(self.query("SELECT count() FROM predictions_raw")[0][0])

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Until the sink answers and the worker holds every input partition."""

        def ready() -> bool:
            self.check_alive()
            worker = self.worker_health()
            return (
                self.sink_health() is not None
                and worker is not None
                and len(worker["assigned"]) == self.settings.topics.partitions
            )

        wait_until(ready, timeout_s, "the worker and the sink to be ready", interval_s=0.1)

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

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
