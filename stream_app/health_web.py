"""A process's web server (aiohttp, run as a ``mode`` Service): ``GET /health``, ``/healthz``,
``/readyz`` and ``/metrics``, for the long-running processes that are not a faust App (the sink,
the online learner, the retrainer). A subclass adds its own routes
(:meth:`HealthWeb.application`)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import mode
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class HealthWeb(mode.Service):
    """Serves on ``listener``, a bound socket (the process's :class:`~stream_app.startup_web.
    StartupWeb`'s, which answered while the process started), from start to stop.

    ``health`` gives the counters and ``reasons`` the process is not doing its job (it may
    block: it runs in a thread): any reason answers 503 on ``/health``; any reason of ``ready``
    (also run in a thread) answers 503 on ``/readyz``.
    """

    def __init__(
        self,
        listener: socket.socket,
        health: Callable[[], dict[str, object]],
        metrics: CollectorRegistry,
        ready: Callable[[], list[str]] = list,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._listener = listener
        self.port: int = listener.getsockname()[1]
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
        await web.SockSite(self._runner, self._listener).start()
        self.log.info("serving on http://%s:%d", self._listener.getsockname()[0], self.port)

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
