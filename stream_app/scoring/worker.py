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
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import faust
from confluent_kafka.admin import AdminClient
from prometheus_client import generate_latest

from stream_app.kafka.config import admin_config
from stream_app.kafka.probe import broker_unreachable
from stream_app.scoring.build import build_loop
from stream_app.scoring.health import not_ready_reasons, unhealthy_reasons
from stream_app.scoring.listener import ListenerApp
from stream_app.scoring.loop import ScoringLoop
from stream_app.scoring.metrics import loop_metrics
from stream_app.settings import Settings
from stream_app.startup_web import build_answering
from stream_app.thread_service import EXIT_LOOP_FAILED, ThreadService, execute

log = logging.getLogger(__name__)

#: exit code of a worker whose scoring thread failed (EX_SOFTWARE)
EXIT_SCORING_FAILED = EXIT_LOOP_FAILED


class ScoringService(ThreadService):
    """Runs the scoring loop in a thread; on stop the batch in flight finishes and commits.

    If the thread ends on its own, the worker shuts down as on SIGTERM and :func:`run_worker`
    exits with :data:`EXIT_SCORING_FAILED` (see :mod:`stream_app.thread_service`).
    """

    def __init__(self, loop: ScoringLoop, **kwargs: Any) -> None:
        super().__init__(loop, "scoring-loop", **kwargs)
        self.scoring = loop


def create_app(
    settings: Settings, service: ScoringService, datadir: Path, listener: socket.socket
) -> faust.App:
    """The faust App with the scoring service's web pages, served on ``listener``."""
    loop = service.scoring
    app = ListenerApp(
        "stream-app-worker",
        listener,
        datadir=str(datadir),
        store="memory://",
        autodiscover=False,
    )
    metrics = loop_metrics(loop, settings.topics.drift_events)
    admin = AdminClient(admin_config(settings))

    async def broker_error() -> str | None:
        return await asyncio.get_running_loop().run_in_executor(
            None, broker_unreachable, admin, settings.health_broker_timeout_s
        )

    @app.page("/healthz")
    async def alive(web: Any, _request: Any) -> Any:
        """200 while the process answers (liveness: nothing is asked of the broker)."""
        return web.json({"status": "alive", "worker_id": settings.worker_id})

    @app.page("/readyz")
    async def ready(web: Any, _request: Any) -> Any:
        """200 when the worker can score: its thread runs (so its models are loaded) and a
        broker answers; 503 with the reasons if not."""
        reasons = not_ready_reasons(
            failure=service.failure, running=service.running, broker_error=await broker_error()
        )
        return web.json(
            {
                "status": "not ready" if reasons else "ready",
                "reasons": reasons,
                "model_version": loop.switch.models.champion.version,
            },
            status=503 if reasons else 200,
        )

    @app.page("/health")
    async def health(web: Any, _request: Any) -> Any:
        """200 with the counters while the worker does its job; 503 with the reasons if not."""
        stats = loop.stats
        reasons = unhealthy_reasons(
            stats,
            failure=service.failure,
            running=service.running,
            broker_error=await broker_error(),
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
                "first_record_cpu_s": stats.first_record_cpu_s,
                "commits_dropped": stats.commits_dropped,
                "stage_seconds": stats.stages.snapshot(),
                "transactions": sum(stats.state_records.counts),
                "transaction_seconds": stats.transaction_stages.snapshot(),
                "transaction_laps_over_50ms": stats.transaction_stages.over(0.05),
                "transaction_state_records": int(stats.state_records.total),
            },
            status=503 if reasons else 200,
        )

    @app.page("/metrics")
    async def prometheus(web: Any, _request: Any) -> Any:
        return web.text(generate_latest(metrics).decode(), content_type="text/plain")

    return app


def run_worker(settings: Settings) -> None:
    """Build the loop (broker waited for, model loaded before anything is consumed), answering
    "starting" on the web port meanwhile, and hand the process to faust."""
    loop, listener = build_answering(
        settings,
        settings.worker_web_port,
        "loading the models and checking the topics",
        lambda: build_loop(settings),
    )
    log.info("worker %s starting with models %s", settings.worker_id, loop.switch.models.versions)
    serve(settings, loop, listener)


def serve(settings: Settings, loop: ScoringLoop, listener: socket.socket) -> None:
    """Run ``loop`` under faust until SIGTERM, its pages on ``listener``; exit with
    :data:`EXIT_SCORING_FAILED` if its thread ended on its own."""
    with tempfile.TemporaryDirectory(prefix="stream-app-faust-") as datadir:
        service = ScoringService(loop)
        app = create_app(settings, service, Path(datadir), listener)
        # the logging the command line set up (text or JSON) stays: faust does not replace it,
        # prints nothing to the console, and draws no start-up spinner (terminal escapes and
        # " OK ^" on stdout, a line of text in a log of JSON lines); it logs "Ready" instead
        worker = faust.Worker(app, service, override_logging=False, quiet=True)
        worker.spinner = None
        execute(worker, service)
