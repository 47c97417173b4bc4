"""The worker's ``/health`` tells the truth, and ordinary disruptions do not stop scoring: a broker
stopped and restarted, a rules path that would block its reader, a model that aborts its loader."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from stream_app.kafka.local_broker import LocalBroker
from stream_app.kafka.topics import ensure_topics
from stream_app.processes import ChildProcess
from stream_app.produce import ProduceOptions, produce
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def health(port: int) -> tuple[int, dict[str, Any]] | None:
    """``/health``'s HTTP status and document, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def healthy_with(port: int, scored: int) -> bool:
    answer = health(port)
    return answer is not None and answer[0] == 200 and answer[1]["scored"] >= scored


def unhealthy_because(port: int, words: str) -> bool:
    answer = health(port)
    return answer is not None and answer[0] == 503 and any(words in r for r in answer[1]["reasons"])


def test_a_stopped_broker_is_reported_and_scoring_resumes_after_its_restart(
    make_settings, tmp_path
):
    """A private broker, stopped under the worker and started again: the worker's group
    membership is gone (the checkpoint commit is refused with UNKNOWN_MEMBER_ID), it rejoins."""
    broker = LocalBroker(log_file=tmp_path / "private-broker.log").start()
    try:
        settings = make_settings(
            bootstrap_servers=broker.bootstrap_servers,
            health_stall_s=5.0,
            batch_size=200,
            checkpoint_interval_ms=600_000,  # what it scored is not committed when the broker stops
        )
        port = settings.worker_web_port
        produce(settings, ProduceOptions(events=2000, seed=31))
        worker = ChildProcess("worker", ["worker"], settings, tmp_path)
        try:
            wait_for(lambda: healthy_with(port, 2000), 120, "the worker scoring, healthy")
            broker.stop()
            wait_for(lambda: unhealthy_because(port, "broker unreachable"), 60, "503: broker")
            broker.start()
            ensure_topics(settings)  # the local broker keeps its log in memory
            scored = health(port)[1]["scored"]  # type: ignore[index]
            produce(settings, ProduceOptions(events=2000, seed=32))
            wait_for(lambda: healthy_with(port, scored + 2000), 120, "scoring again, healthy")
            worker.check_alive()
        finally:
            code = worker.stop()
        assert code == 0, worker.log_path.read_text()[-3000:]
    finally:
        broker.stop()
