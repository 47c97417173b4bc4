"""The real worker process (faust app + batched hot path): crash and clean shutdown."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Consumer, TopicPartition

from stream_app.kafka.config import consumer_config
from stream_app.processes import ChildProcess, get_json
from stream_app.produce import ProduceOptions, produce
from stream_app.warehouse.sql import query_rows
from tests.integration.conftest import read_topic, wait_for

pytestmark = pytest.mark.integration


def scored(port: int) -> int:
    health = get_json(f"http://127.0.0.1:{port}/health")
    return int(health["scored"]) if health else 0


def count(settings, query: str) -> int:
    return int(query_rows(settings, query)[1][0][0])


def test_sigkill_mid_stream_then_restart_leaves_exactly_one_prediction_per_event(
    make_settings, running_sink, tmp_path
):
    settings = make_settings(batch_size=200)
    options = ProduceOptions(events=20_000, rate=4000, bad_fraction=0.01, seed=11)
    result = {}
    producer = threading.Thread(target=lambda: result.update(report=produce(settings, options)))
    producer.start()
    with running_sink(settings):
        first = ChildProcess("worker-1", ["worker"], settings, tmp_path)
        try:
            wait_for(lambda: scored(settings.worker_web_port) >= 3000, 90, "first worker scoring")
        finally:
            first.kill()  # SIGKILL: no flush, no commit, no leave
        second = ChildProcess("worker-2", ["worker"], settings, tmp_path)
        try:
            producer.join(60)
            report = result["report"]
            wait_for(
                lambda: (
                    count(settings, "SELECT count() FROM predictions") >= report.valid
                    and count(settings, "SELECT count() FROM dead_letters") >= report.malformed
                ),
                120,
                "all events stored after the restart",
            )
        finally:
            assert second.stop() == 0
    assert count(settings, "SELECT count() FROM predictions") == report.valid
    assert count(settings, "SELECT uniqExact(event_id) FROM predictions") == report.valid
    assert count(settings, "SELECT count() FROM dead_letters") == report.malformed
    workers = query_rows(settings, "SELECT DISTINCT worker_id FROM predictions")[1]
    assert len(workers) == 1  # both processes had the same worker id from the settings


def test_sigterm_finishes_the_batch_commits_and_exits_cleanly(make_settings, tmp_path):
    settings = make_settings(batch_size=1000)
    options = ProduceOptions(events=16_000, rate=1600, seed=12)
    producer = threading.Thread(target=lambda: produce(settings, options))
    producer.start()
    worker = ChildProcess("worker", ["worker"], settings, tmp_path)
    try:
        wait_for(lambda: scored(settings.worker_web_port) >= 2000, 90, "worker scoring")
    finally:
        code = worker.stop(timeout_s=30)
    producer.join(60)
    assert code == 0, worker.log_path.read_text()[-2000:]

    checker = Consumer(consumer_config(settings, settings.worker_group))
    partitions = [
        TopicPartition(settings.topics.transactions, p) for p in range(settings.topics.partitions)
    ]
    committed = checker.committed(partitions, timeout=10)
    checker.close()
    committed_total = sum(max(tp.offset, 0) for tp in committed)
    assert 2000 <= committed_total < options.events
    # exactly the committed records were scored: nothing in flight was lost or left uncommitted
    outputs = read_topic(settings, settings.topics.predictions, committed_total, timeout_s=20)
    assert len(outputs) == committed_total
