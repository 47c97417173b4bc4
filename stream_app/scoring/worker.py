"""``stream-app worker``: a faust-streaming application that owns the scoring worker's life.

faust runs the web server (``/health``, ``/metrics``), signal handling and shutdown; the hot path
is a :class:`ScoringLoop` (confluent-kafka, batched) run as a faust Service in its own thread,
because faust's per-event stream path is far slower than the batch loop (see DESIGN.md).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import mode
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream_app.scoring.build import build_loop
from stream_app.scoring.loop import ScoringLoop
from stream_app.settings import Settings

log = logging.getLogger(__name__)


class ScoringService(mode.Service):
    """Runs the scoring loop in a thread; on stop the batch in flight finishes and commits."""

    def __init__(self, loop: ScoringLoop, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scoring = loop
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    async def on_start(self) -> None:
        event_loop = asyncio.get_running_loop()

        def run() -> None:
            try:
                self.scoring.run()
            except BaseException as exc:  # surface to faust: the worker must stop, not limp on
                log.exception(
                    "scoring loop failed; input offsets of the failed batch not committed"
                )
                self.failure = exc
                asyncio.run_coroutine_threadsafe(self.crash(exc), event_loop)

        self._thread = threading.Thread(target=run, name="scoring-loop", daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        self.scoring.stop()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 60.0)


class LoopCollector(Collector):
    """Prometheus view of the loop's counters, read at scrape time."""

    def __init__(self, loop: ScoringLoop) -> None:
        self._loop = loop

    def collect(self) -> Iterator[Metric]:
        stats = self._loop.stats
        for name, value, doc in (
            ("consumed", stats.consumed, "input records consumed"),
            ("scored", stats.scored, "events scored"),
            ("dead_lettered", stats.dead_lettered, "records sent to the dead-letter topic"),
            ("batches", stats.batches, "batches committed"),
        ):
            yield CounterMetricFamily(f"stream_app_worker_{name}", doc, value=value)
        yield GaugeMetricFamily(
            "stream_app_worker_last_batch_seconds",
            "duration of the last batch",
            stats.last_batch_seconds,
        )
        stages = CounterMetricFamily(
            "stream_app_worker_stage_seconds", "time spent per hot-path stage", labels=["stage"]
        )
        for stage, seconds in stats.stages.snapshot().items():
            stages.add_metric([stage], seconds)
        yield stages


def create_app(settings: Settings, service: ScoringService, datadir: Path) -> faust.App:
    """The faust App with the scoring service's web pages."""
    loop = service.scoring
    local = settings.kafka_profile == "local"
    app = faust.App(
        "stream-app-worker",
        broker=f"kafka://{settings.bootstrap_servers}",
        web_host=settings.sql_host,
        web_bind=settings.sql_host,
        web_port=settings.worker_web_port,
        datadir=str(datadir),
        store="memory://",
        autodiscover=False,
        topic_partitions=1,
        broker_session_timeout=6.0 if local else 60.0,
        broker_heartbeat_interval=1.0 if local else 3.0,
        broker_rebalance_timeout=6.0 if local else 60.0,
    )
    metrics = CollectorRegistry()
    metrics.register(LoopCollector(loop))

    @app.page("/health")
    async def health(web: Any, _request: Any) -> Any:
        stats = loop.stats
        return web.json(
            {
                "status": "failed" if service.failure else "ok",
                "worker_id": settings.worker_id,
                "model_version": loop.switch.models.champion.version,
                "challenger_version": loop.switch.models.versions[1],
                "commands_applied": loop.switch.applied,
                "commands_refused": loop.switch.refused,
                "last_swap_pause_ms": stats.last_swap_pause_ms,
                "alerts": stats.alerts,
                "alerts_suppressed": loop.pipeline.alerts.suppressed,
                "rules_refused": loop.rules.refused,
                "assigned": stats.assigned,
                "scored": stats.scored,
                "batches": stats.batches,
                "dead_lettered": stats.dead_lettered,
                "uptime_s": round(time.time() - stats.started_at, 1),
                "first_record_at": stats.first_record_at,
                "stage_seconds": stats.stages.snapshot(),
            }
        )

    @app.page("/metrics")
    async def prometheus(web: Any, _request: Any) -> Any:
        return web.text(generate_latest(metrics).decode(), content_type="text/plain")

    return app


def run_worker(settings: Settings) -> None:
    """Build the loop (model loaded before anything is consumed) and hand the process to faust."""
    loop = build_loop(settings)
    log.info("worker %s starting with models %s", settings.worker_id, loop.switch.models.versions)
    with tempfile.TemporaryDirectory(prefix="stream-app-faust-") as datadir:
        service = ScoringService(loop)
        app = create_app(settings, service, Path(datadir))
        level = logging.getLevelName(logging.getLogger().level).lower()
        worker = faust.Worker(app, service, loglevel=level)
        worker.execute_from_commandline()
