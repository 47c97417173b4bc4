"""``stream-app worker``: a faust-streaming application that owns the scoring worker's life.

faust runs the web server (``/health``, ``/metrics``), signal handling and shutdown; the hot path
is a :class:`ScoringLoop` (confluent-kafka, batched) run as a faust Service in its own thread,
because faust's per-event stream path is far slower than the batch loop (see DESIGN.md).
``/health`` answers 503 with its reasons when the worker is not doing its job, and a worker whose
scoring thread ended on its own exits with code 70 (docs/operations.md, "Health").
"""

from __future__ import annotations

import asyncio
import logging
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import mode
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream_app.errors import StreamAppError
from stream_app.kafka.config import admin_config
from stream_app.kafka.probe import broker_unreachable
from stream_app.scoring.build import build_loop
from stream_app.scoring.health import unhealthy_reasons
from stream_app.scoring.loop import ScoringLoop
from stream_app.settings import Settings

log = logging.getLogger(__name__)

#: exit code of a worker whose scoring thread failed (EX_SOFTWARE)
EXIT_SCORING_FAILED = 70


class ScoringService(mode.Service):
    """Runs the scoring loop in a thread; on stop the batch in flight finishes and commits.

    A watchdog checks every second that the thread still runs unless asked to stop: if it ended
    (an exception, whatever way it escaped), the worker shuts down as on SIGTERM and
    :func:`run_worker` exits with :data:`EXIT_SCORING_FAILED`, so a supervisor can act.
    """

    def __init__(self, loop: ScoringLoop, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scoring = loop
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.failure: BaseException | None = None

    async def on_start(self) -> None:
        def run() -> None:
            try:
                self.scoring.run()
            except BaseException as exc:
                self.failure = exc
                log.exception(
                    "scoring loop failed; input offsets of the failed batch not committed"
                )

        self._thread = threading.Thread(target=run, name="scoring-loop", daemon=True)
        self._thread.start()

    @mode.Service.timer(1.0)
    async def _watchdog(self) -> None:
        if self._stopping or self.running:
            return
        self._stopping = True
        if self.failure is None:
            self.failure = StreamAppError("the scoring thread ended without being stopped")
        log.error("scoring thread ended: the worker stops, exit code %d", EXIT_SCORING_FAILED)
        signal.raise_signal(signal.SIGTERM)  # faust's own shutdown, as on a stop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def on_stop(self) -> None:
        self._stopping = True
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

    admin = AdminClient(admin_config(settings))

    @app.page("/health")
    async def health(web: Any, _request: Any) -> Any:
        """200 with the counters while the worker does its job; 503 with the reasons if not."""
        stats = loop.stats
        broker_error = await asyncio.get_running_loop().run_in_executor(
            None, broker_unreachable, admin, settings.health_broker_timeout_s
        )
        reasons = unhealthy_reasons(
            stats,
            failure=service.failure,
            running=service.running,
            broker_error=broker_error,
            stall_s=settings.health_stall_s,
            now=time.monotonic(),
        )
        return web.json(
            {
                "status": "unhealthy" if reasons else "ok",
                "reasons": reasons,
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
                "commits_dropped": stats.commits_dropped,
                "stage_seconds": stats.stages.snapshot(),
            },
            status=503 if reasons else 200,
        )

    @app.page("/metrics")
    async def prometheus(web: Any, _request: Any) -> Any:
        return web.text(generate_latest(metrics).decode(), content_type="text/plain")

    return app


def run_worker(settings: Settings) -> None:
    """Build the loop (model loaded before anything is consumed) and hand the process to faust."""
    loop = build_loop(settings)
    log.info("worker %s starting with models %s", settings.worker_id, loop.switch.models.versions)
    serve(settings, loop)


def serve(settings: Settings, loop: ScoringLoop) -> None:
    """Run ``loop`` under faust until SIGTERM; exit with :data:`EXIT_SCORING_FAILED` if its
    thread ended on its own."""
    with tempfile.TemporaryDirectory(prefix="stream-app-faust-") as datadir:
        service = ScoringService(loop)
        app = create_app(settings, service, Path(datadir))
        level = logging.getLevelName(logging.getLogger().level).lower()
        worker = faust.Worker(app, service, loglevel=level)
        try:
            worker.execute_from_commandline()
        except SystemExit:
            if service.failure is not None:  # a supervisor must see that the worker failed
                raise SystemExit(EXIT_SCORING_FAILED) from service.failure
            raise
