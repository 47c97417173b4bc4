"""A process's web server (aiohttp, run as a ``mode`` Service): ``GET /health``, ``/healthz``,
``/readyz`` and ``/metrics``, for the long-running processes that are not a faust App (the sink,
the online learner, the retrainer). A subclass adds its own routes
(:meth:`HealthWeb.application`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mode
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream_app.port_file import write_port


class HealthWeb(mode.Service):
    """Serves on ``host:port`` (0: a free port, then read :attr:`port`) from start to stop.

    ``health`` gives the counters and ``reasons`` the process is not doing its job (it may
    block: it runs in a thread): any reason answers 503 on ``/health``; any reason of ``ready``
    (also run in a thread) answers 503 on ``/readyz``. The port is written to ``port_file``, if
    given, once it serves.
    """

    def __init__(
        self,
        host: str,
        port: int,
        health: Callable[[], dict[str, object]],
        metrics: CollectorRegistry,
        port_file: Path | None = None,
        ready: Callable[[], list[str]] = list,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._host, self.port, self._port_file = host, port, port_file
        self._health, self._ready, self._metrics = health, ready, metrics
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        """The application the health routes are added to (a subclass adds its own)."""
        return web.Application()

    async def on_start(self) -> None:
        app = self.application()
        app.router.add_get("/health", self._get_health)
        app.router.add_get("/healthz", self._get_alive)
        app.router.add_get("/readyz", self._get_ready)
        app.router.add_get("/metrics", self._get_metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.log.info("serving on http://%s:%d", self._host, self.port)
        if self._port_file is not None:
            write_port(self._port_file, self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _get_health(self, _request: web.Request) -> web.Response:
        report = await asyncio.get_running_loop().run_in_executor(None, self._health)  # may block
        ok = not report.get("reasons")
        return web.json_response(
            {"status": "ok" if ok else "unhealthy", **report}, status=200 if ok else 503
        )

    async def _get_alive(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _get_ready(self, _request: web.Request) -> web.Response:
        reasons = await asyncio.get_running_loop().run_in_executor(None, self._ready)
        return web.json_response(
            {"status": "not ready" if reasons else "ready", "reasons": reasons},
            status=503 if reasons else 200,
        )

    async def _get_metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self._metrics), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
