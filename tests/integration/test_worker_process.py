"""The real worker process (faust app + batched hot path): crash and clean shutdown."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import consumer_config
from stream_app.processes import ChildProcess, get_json
from tests.integration.conftest import (
    assert_ledger,
    committed,
    producing,
    read_topic,
    wait_for,
    wait_until_stored,
)

pytestmark = pytest.mark.integration


def scored(port: int) -> int:
    health = get_json(f"http://127.0.0.1:{port}/health")
    return int(health["scored"]) if health else 0


def produced(settings) -> int:
    """Records in the transactions topic now, by its high watermarks."""
    consumer = Consumer(consumer_config(settings, settings.worker_group))
    try:
        topic, partitions = settings.topics.transactions, settings.topics.partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        )
    finally:
        consumer.close()


@pytest.mark.faults
def test_sigkill_mid_stream_then_restart_leaves_exactly_one_prediction_per_event(
    make_settings, running_sink, fault_figures, tmp_path
):
    settings = make_settings(batch_size=200, checkpoint_interval_ms=2000)
    options = ProduceOptions(events=20_000, rate=2000, bad_fraction=0.01, seed=11)
    first = ChildProcess("worker-1", ["worker"], settings, tmp_path)
    try:
        # serving before the stream starts: a slow start must not leave the whole stream scored
        # by the kill (it did once on a loaded host: 20,000 of 20,000 committed at the kill)
        wait_for(lambda: get_json(first.web_url("/health")) is not None, 90, "the worker serving")
    except BaseException:
        first.kill()
        raise
    with running_sink(settings), producing(settings, options) as result:
        try:
            wait_for(
                lambda: (
                    committed(settings, settings.worker_group) > 0
                    and scored(first.web_port()) >= 3000
                ),
                90,
                "first worker scoring past a checkpoint",
            )
        finally:
            first.kill()  # SIGKILL: no flush, no commit, no leave
        killed_at = time.monotonic()
        committed_at_kill = committed(settings, settings.worker_group)
        produced_at_kill = produced(settings)
        second = ChildProcess("worker-2", ["worker"], settings, tmp_path)
        try:
            assert committed_at_kill < produced_at_kill  # killed mid-stream: records uncommitted
            wait_for(lambda: scored(second.web_port()) > 0, 90, "the replacement scoring")
            fault_figures.recovery_s = round(time.monotonic() - killed_at, 1)
            wait_for(lambda: "report" in result, 60, "every event produced")
            wait_for(
                lambda: committed(settings, settings.worker_group) == options.events,
                90,
                "the replacement scored and checkpointed the rest",
            )
            wait_until_stored(settings, result["report"])
            fault_figures.peak_rss("worker", second.pid)
        finally:
            code = second.stop()
    assert code == 0, second.log_path.read_text()[-2000:]
    assert_ledger(settings, result["report"], fault_figures)  # one row per event in what is queried
    # the replay: the records scored after the last checkpoint were scored again
    assert fault_figures.replayed is not None and fault_figures.replayed > 0


def test_sigterm_finishes_the_batch_commits_and_exits_cleanly(make_settings, tmp_path):
    settings = make_settings(batch_size=1000)
    options = ProduceOptions(events=16_000, rate=1600, seed=12)
    producer = threading.Thread(target=lambda: produce(settings, options))
    producer.start()
    worker = ChildProcess("worker", ["worker"], settings, tmp_path)
    try:
        wait_for(lambda: scored(worker.web_port()) >= 2000, 90, "worker scoring")
    finally:
        code = worker.stop(timeout_s=30)
    producer.join(60)
    assert code == 0, worker.log_path.read_text()[-2000:]

    committed_total = committed(settings, settings.worker_group)
    assert 2000 <= committed_total < options.events
    # exactly the committed records were scored: nothing in flight was lost or left uncommitted
    outputs = read_topic(settings, settings.topics.predictions, committed_total, timeout_s=20)
    assert len(outputs) == committed_total
