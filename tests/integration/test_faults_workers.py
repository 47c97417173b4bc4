"""Fault suite: a worker of two killed, a backlog met by a worker started late, poison records
at every position of a batch. Each ends with the ledger check."""

from __future__ import annotations

import itertools
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from stream_app.codecs.json import JsonCodec
from stream_app.devtools.bad_events import CATALOGUE
from stream_app.devtools.bench.deployment import Deployment
from stream_app.devtools.generator import TransactionGenerator
from stream_app.devtools.produce import ProduceOptions, ProduceReport, produce
from stream_app.kafka.config import consumer_config, producer_config
from stream_app.settings import Settings
from tests.integration.conftest import (
    assert_ledger,
    committed,
    committed_offsets,
    producing,
    query_warehouse,
    wait_for,
    wait_until_stored,
)
from tests.integration.faults import STARTUP_S, answered

pytestmark = [pytest.mark.integration, pytest.mark.faults]
OWN_WAREHOUSE = pytest.mark.local_stack  # a sink process on a chDB directory of its own


def committed_by_partition(settings: Settings, partitions: list[int]) -> list[int]:
    consumer = Consumer(consumer_config(settings, settings.worker_group))
    topic = settings.topics.transactions
    try:
        return committed_offsets(consumer, [TopicPartition(topic, p) for p in partitions])
    finally:
        consumer.close()


@OWN_WAREHOUSE
def test_two_workers_one_killed(make_settings, fault_figures, tmp_path):
    settings = make_settings(
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}", checkpoint_interval_ms=1000
    )
    options = ProduceOptions(events=30_000, rate=2000, bad_fraction=0.01, seed=71)
    deployment = Deployment(settings, "two-workers", tmp_path, workers=2)
    try:
        deployment.start(STARTUP_S)
        deployment.wait_ready()
        settings = deployment.settings
        with producing(settings, options) as result:
            wait_for(
                lambda: (
                    min((h or {}).get("scored", 0) for h in deployment.workers_health()) >= 2000
                ),
                STARTUP_S,
                "both workers scoring",
            )
            moved = [
                int(tp.rsplit(":", 1)[1])
                for tp in answered(lambda: deployment.worker_health(1))["assigned"]
            ]
            deployment.workers[1].kill()  # SIGKILL: its partitions wait for the session timeout
            killed_at = time.monotonic()
            at_kill = committed_by_partition(settings, moved)
            wait_for(
                lambda: all(
                    now > then
                    for now, then in zip(committed_by_partition(settings, moved), at_kill,
                                         strict=True)
                ),
                STARTUP_S,
                "the survivor scoring the partitions of the killed worker",
            )  # fmt: skip
            fault_figures.recovery_s = round(time.monotonic() - killed_at, 1)
            assert (
                len(answered(lambda: deployment.worker_health(0))["assigned"])
                == settings.topics.partitions
            )
        report = result["report"]
        wait_until_stored(settings, report)
        fault_figures.peak_rss("worker", deployment.worker.pid)
        fault_figures.notes["partitions moved"] = len(moved)
    finally:
        deployment.stop()
    assert moved
    assert_ledger(settings, report, fault_figures)


BACKLOG = 200_000  # ten times a minute of a worker here would be ~18 M events: scaled down


@OWN_WAREHOUSE
def test_burst_backlog_then_the_worker_started(make_settings, fault_figures, tmp_path):
    settings = make_settings(warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}", batch_size=2000)
    report = produce(settings, ProduceOptions(events=BACKLOG, bad_fraction=0.01, seed=72))
    deployment = Deployment(settings, "burst", tmp_path)
    try:
        started = time.monotonic()
        deployment.start(STARTUP_S)
        settings = deployment.settings
        wait_for(
            lambda: committed(settings, settings.worker_group) == BACKLOG,
            300,
            "the backlog scored and committed",
        )
        drain_s = time.monotonic() - started
        fault_figures.recovery_s = round(drain_s, 1)
        fault_figures.notes["drain events/s"] = round(BACKLOG / drain_s)
        fault_figures.notes["backlog"] = BACKLOG
        wait_until_stored(settings, report, 300)
        fault_figures.peak_rss("worker", deployment.worker.pid)
        fault_figures.peak_rss("sink", deployment.sink.pid)
    finally:
        deployment.stop()
    assert_ledger(settings, report, fault_figures)
    assert fault_figures.peak_rss_mb["worker"] < 1024  # a backlog is read a batch at a time


BATCH = 10
POSITIONS = {"first": {0}, "middle": {BATCH // 2}, "last": {BATCH - 1}, "all": set(range(BATCH))}


def test_poison_at_every_position_of_a_batch(
    make_settings, running_worker, running_sink, fault_figures
):
    """Blocks of one batch each on one partition, produced before the worker starts so that a
    consume takes one block: a malformed record (the cases of the catalogue in turn) at the
    first, middle or last position, or at every one; then load on every partition."""
    settings = make_settings(batch_size=BATCH)
    events = (g.event for g in TransactionGenerator(seed=73))
    cases, codec = itertools.cycle(CATALOGUE), JsonCodec()
    producer = Producer(producer_config(settings))
    report = ProduceReport()
    for poisoned in [*POSITIONS.values(), set()]:  # and a clean block last
        for position in range(BATCH):
            event = next(events)
            value, key = codec.encode(event), event.card_id.encode()
            if position in poisoned:
                case = next(cases)
                value, key = case.make(event), case.key(event)
                report.malformed += 1
                report.malformed_by_reason[case.reason] = (
                    report.malformed_by_reason.get(case.reason, 0) + 1
                )
            else:
                report.valid += 1
            producer.produce(settings.topics.transactions, value, key, partition=0)
    assert producer.flush(30) == 0
    load = ProduceOptions(events=5000, rate=1000, seed=74)
    with running_sink(settings), running_worker(settings), producing(settings, load) as result:
        wait_for(lambda: "report" in result, 60, "the load produced")
        report.valid += result["report"].valid
        wait_until_stored(settings, report)
    assert_ledger(settings, report, fault_figures)
    by_reason = query_warehouse(settings, "SELECT reason, count() FROM dead_letters GROUP BY 1")[1]
    assert dict(by_reason) == report.malformed_by_reason
