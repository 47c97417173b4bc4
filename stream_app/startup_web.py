"""A long-running process's web socket, bound first thing and answering while the process starts.

A worker, sink, learner or retrainer started while its broker is away waits for it for as long as
it takes (docs/operations.md, "Started while the broker is down"). Its pages come with the
service, after that wait, so an orchestrator's probe used to find the port closed: a liveness
probe with a deadline then killed a process that was only waiting, into the same wait again.
:class:`StartupWeb` binds the process's port before the wait and answers on it until the
service's own server takes over the very same socket (no moment where the port is closed, and no
other process can take it in between):

- ``/healthz`` 200: the process is alive;
- ``/health``, ``/readyz``, ``/metrics`` and every other path 503, ``{"status": "starting",
  "reasons": [...]}``: what start-up is waiting for, and for how long.

The port is written to the port file (:mod:`stream_app.port_file`) as soon as it is bound: a
parent waiting for the service's pages waits for ``/healthz`` without ``"starting"`` on it
(:meth:`stream_app.processes.ChildProcess.web_port`). :func:`build_answering` is the start-up
every long-running process makes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from stream_app.kafka.probe import wait_for_broker
from stream_app.port_file import write_port
from stream_app.settings import Settings

T = TypeVar("T")

#: how often the serving thread looks whether it must hand the socket over
POLL_S = 0.05


class StartupWeb:
    """Binds ``host:port`` (0: a free port), writes it to ``port_file`` if given, and inside
    ``with`` answers "starting" on it.

    >>> with StartupWeb("127.0.0.1", 0) as startup:
    ...     startup.waiting("waiting for a broker at 127.0.0.1:1")
    ...     status, body = startup.answer("/health")
    >>> status, body["status"], body["reasons"][0].split(": ", 1)[1]
    (503, 'starting', 'waiting for a broker at 127.0.0.1:1')
    >>> startup.answer("/healthz")[0]
    200
    >>> startup.listener.close()
    """

    def __init__(self, host: str, port: int, port_file: Path | None = None) -> None:
        self.listener = socket.create_server((host, port))
        self.port: int = self.listener.getsockname()[1]
        if port_file is not None:
            write_port(port_file, self.port)
        self._started = time.monotonic()
        self._reason = "building the service"
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._serve, name="startup-web", daemon=True)

    def waiting(self, reason: str) -> None:
        """What start-up waits for now (the reason ``/health`` gives)."""
        self._reason = reason

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        """The status and body for a request of ``path``."""
        if path.split("?", 1)[0] == "/healthz":
            return 200, {"status": "alive", "starting": True}
        reason = f"starting ({time.monotonic() - self._started:.0f} s): {self._reason}"
        return 503, {"status": "starting", "reasons": [reason]}

    def __enter__(self) -> StartupWeb:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Stop answering; the socket stays open for the service's server (closed on an error)."""
        self._server.shutdown()
        self._thread.join()
        if error is not None:
            self.listener.close()

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=POLL_S)


def build_answering(
    settings: Settings, port: int, doing: str, build: Callable[[], T]
) -> tuple[T, socket.socket]:
    """``build()`` once a broker answers, however long that takes, with ``port`` answering
    "starting" meanwhile (what it waits for, then ``doing``); the service built and the bound
    socket its own pages take over."""
    with StartupWeb(settings.sql_host, port, settings.web_port_file) as web:
        wait_for_broker(settings, web.waiting)
        web.waiting(doing)
        built = build()
    return built, web.listener


class _Server(ThreadingHTTPServer):
    """An HTTP server on the socket :class:`StartupWeb` bound (its own never bound)."""

    daemon_threads = True

    def __init__(self, startup: StartupWeb) -> None:
        super().__init__(startup.listener.getsockname(), _Handler, bind_and_activate=False)
        self.socket.close()  # the one ``socketserver`` made; the startup socket replaces it
        self.socket = startup.listener
        self.startup = startup


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # http.server's name
        status, body = self.server.startup.answer(self.path)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET  # the sink's SQL endpoint: "starting" as well

    def log_message(self, format: str, *args: Any) -> None:  # http.server's name
        """Probes every few seconds are no news: nothing logged."""
