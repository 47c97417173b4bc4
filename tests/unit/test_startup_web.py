"""A process answers on its web port from its first moment: "starting" while it waits, then its
service's own pages on the same socket, with no moment where the port is closed."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from stream_app.health_web import HealthWeb
from stream_app.port_file import read_port
from stream_app.startup_web import StartupWeb


def request(port: int, path: str, data: bytes | None = None) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_while_starting_it_is_alive_and_says_what_it_waits_for(tmp_path: Path) -> None:
    port_file = tmp_path / "worker.port"
    with StartupWeb("127.0.0.1", 0, port_file) as startup:
        assert read_port(port_file) == startup.port  # bound, so written at once
        assert request(startup.port, "/healthz") == (200, {"status": "alive", "starting": True})
        startup.waiting("waiting for a broker at 127.0.0.1:1: Local: Timed out")
        for path in ("/health", "/readyz", "/metrics", "/anything"):
            status, body = request(startup.port, path)
            assert status == 503 and body["status"] == "starting", (path, body)
            assert str(body["reasons"]).endswith(
                "waiting for a broker at 127.0.0.1:1: Local: Timed out']"
            )
        status, body = request(startup.port, "/query", data=b"SELECT 1")  # the sink's SQL
        assert (status, body["status"]) == (503, "starting")
    startup.listener.close()


def test_the_service_takes_over_the_socket_and_answers_what_was_asked_meanwhile() -> None:
    startup = StartupWeb("127.0.0.1", 0)
    with startup:
        assert request(startup.port, "/healthz")[0] == 200
    # between the start-up server's end and the service's start: the port stays bound, and a
    # connection made now waits in its backlog
    waiting = socket.create_connection(("127.0.0.1", startup.port), timeout=10)
    waiting.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    pages = HealthWeb(startup.listener, lambda: {"scored": 7}, CollectorRegistry(), loop=loop)
    asyncio.run_coroutine_threadsafe(pages.start(), loop).result(30)
    try:
        answer = b""
        while chunk := waiting.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b'"scored": 7' in answer, answer
        assert request(pages.port, "/healthz") == (200, {"status": "alive"})
    finally:
        waiting.close()
        asyncio.run_coroutine_threadsafe(pages.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def test_a_start_that_fails_closes_the_port() -> None:
    startup = StartupWeb("127.0.0.1", 0)
    with pytest.raises(RuntimeError, match="no models"), startup:
        raise RuntimeError("no models")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", startup.port), timeout=10).close()
