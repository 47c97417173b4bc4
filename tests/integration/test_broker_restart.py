"""The broker stops under load and starts again on the same log: nothing acknowledged is lost.

The worker and the sink (real processes) say on ``/health`` that the broker is unreachable, and
reconnect by themselves; the producer's records were all acknowledged, so each must end as
exactly one prediction or dead-letter row; afterwards both consumer groups have committed up to
the high watermarks (no lag), which on Kafka are exact.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stream_app.devtools.bench.deployment import Deployment
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.errors import BrokerError
from stream_app.kafka.commit import CLOSE_TIMEOUT_S, close_consumer, commit_offsets
from stream_app.kafka.config import consumer_config
from stream_app.kafka.local_broker import LocalBroker
from stream_app.processes import ChildProcess, get_json
from tests.integration.conftest import (
    assert_ledger,
    json_lines,
    producing,
    wait_for,
    wait_until_stored,
)
from tests.integration.faults import STARTUP_S, answered

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]


def lag(settings, group: str, topic: str) -> int:
    """Records of ``topic`` past ``group``'s committed offsets, from the high watermarks."""
    consumer = Consumer(consumer_config(settings, group))
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topics.partitions)]
        committed = consumer.committed(partitions, timeout=10)
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
    finally:
        consumer.close()
    return sum(end - max(tp.offset, 0) for tp, end in zip(committed, ends, strict=True))


OUTAGE_S = 20


def unhealthy_because_of_the_broker(health: dict[str, Any] | None) -> bool:
    return health is not None and any("broker unreachable" in r for r in health["reasons"])


def on_its_own_broker(make_settings, broker: LocalBroker, tmp_path: Path, **overrides: Any):
    """Settings whose broker is ``broker`` (a node of the test's own, which it stops) and whose
    warehouse is the test's own."""
    return make_settings(
        bootstrap_servers=broker.bootstrap_servers,
        batch_size=200,
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}",
        health_broker_timeout_s=0.5,  # /health answers within the client's 2 s
        log_json=True,
        **overrides,
    )


#: refused connections a process may log over the whole test (the outage is 20 s): a few per
#: client as librdkafka backs off, not one per client every 50 ms
MAX_REFUSALS_LOGGED = 100


def refused_connections_logged(log: Path) -> int:
    """The refused connections a process logged, every line of its log JSON (librdkafka's
    included)."""
    lines = json_lines(log.read_text(errors="replace").splitlines())
    return sum("Connection refused" in line["message"] for line in lines)


def wait_until_scored(deployment: Deployment, events: int, timeout_s: float) -> None:
    wait_for(
        lambda: answered(deployment.worker_health)["scored"] >= events,
        timeout_s,
        f"{events} events scored",
    )


def wait_until_both_report_the_broker_unreachable(deployment: Deployment) -> None:
    wait_for(
        lambda: (
            unhealthy_because_of_the_broker(deployment.worker_health())
            and unhealthy_because_of_the_broker(deployment.sink_health())
        ),
        60,
        "the worker and the sink reporting the broker unreachable",
    )


@pytest.mark.faults
def test_a_broker_stopped_20s_under_load_loses_nothing_and_duplicates_nothing(
    make_settings, fault_figures, tmp_path
):
    broker = LocalBroker(tmp_path / "broker")  # a node of its own: this test stops it
    broker.start()
    try:
        settings = on_its_own_broker(make_settings, broker, tmp_path)
        options = ProduceOptions(events=12_000, rate=400, bad_fraction=0.01, seed=21)
        deployment = Deployment(settings, "broker-restart", tmp_path)
        try:
            deployment.start(STARTUP_S)
            settings = deployment.settings
            with producing(settings, options) as result:
                wait_until_scored(deployment, 2000, STARTUP_S)
                broker.stop_process()  # SIGTERM: Kafka's own clean shutdown, mid-stream
                stopped_at = time.monotonic()
                wait_until_both_report_the_broker_unreachable(deployment)
                time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))  # the outage
                scored = answered(deployment.worker_health)["scored"]
                starting_at = time.monotonic()
                broker.start()  # the same ports and log
                restarted_at = time.monotonic()
                fault_figures.notes["broker start s"] = round(restarted_at - starting_at, 1)
                wait_for(
                    lambda: answered(deployment.worker_health)["scored"] > scored,
                    STARTUP_S,
                    "scoring again",
                )
                fault_figures.recovery_s = round(time.monotonic() - restarted_at, 1)
            report = result["report"]  # produce() raises unless every record was acknowledged
            wait_until_stored(settings, report)
            wait_for(
                lambda: lag(settings, settings.worker_group, settings.topics.transactions) == 0,
                60,
                "the worker's offsets at the watermarks",
            )
            wait_for(
                lambda: lag(settings, settings.sink_group, settings.topics.predictions) == 0,
                60,
                "the sink's offsets at the watermarks",
            )
            wait_for(
                lambda: (
                    answered(deployment.worker_health)["status"] == "ok"
                    and answered(deployment.sink_health)["status"] == "ok"
                ),
                30,
                "both healthy again",
            )
            fault_figures.peak_rss("worker", deployment.worker.pid)
            fault_figures.peak_rss("sink", deployment.sink.pid)
            fault_figures.notes["outage s"] = OUTAGE_S
            for process in (deployment.worker, deployment.sink):
                refusals = refused_connections_logged(process.log_path)
                fault_figures.notes[f"{process.name.split('-')[-1]} refusals logged"] = refusals
                # librdkafka's re-bootstrap logged ~70 a second in the worker (1,460 in 20 s)
                assert refusals <= MAX_REFUSALS_LOGGED, f"{process.name}: {refusals} refusals"
        finally:
            deployment.check_alive()  # neither gave up on the broker
            deployment.stop()
        assert_ledger(settings, report, fault_figures)
    finally:
        broker.stop()


#: what a supervisor commonly waits after SIGTERM before it kills (Kubernetes' default grace period)
GRACE_S = 30.0


@pytest.mark.faults
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_stop_while_the_broker_is_down_exits_in_time_and_loses_nothing(
    make_settings, fault_figures, tmp_path, guarantee
):
    """An operator stops the worker and the sink while the broker is down (a rolling restart
    during an outage): each exits within the time a supervisor gives it, with code 0. Started
    again while the broker is still down, they wait for it (before, each gave up after 30 s and
    exited, for its supervisor to restart it again and again), and what they had not committed
    is read again once the broker is back: nothing lost, nothing twice."""
    broker = LocalBroker(tmp_path / "broker")  # a node of its own: this test stops it
    broker.start()
    try:
        settings = on_its_own_broker(
            make_settings, broker, tmp_path, processing_guarantee=guarantee
        )
        options = ProduceOptions(events=6_000, rate=1000, bad_fraction=0.01, seed=23)
        deployment = Deployment(settings, "stop-no-broker", tmp_path)
        deployment.start(STARTUP_S)
        settings = deployment.settings
        with producing(settings, options) as result:
            wait_until_scored(deployment, 1000, STARTUP_S)
        report = result["report"]  # every record acknowledged before the broker stops
        wait_until_scored(deployment, 1500, 60)
        broker.stop_process()
        wait_until_both_report_the_broker_unreachable(deployment)
        stop_s, codes = {}, {}
        for child in deployment.children:
            started = time.monotonic()
            role = child.name.rsplit("-", 1)[-1]
            codes[role] = child.stop(timeout_s=GRACE_S * 3)  # SIGTERM, then SIGKILL
            stop_s[role] = round(time.monotonic() - started, 1)
        again = Deployment(settings, "after-the-outage", tmp_path)
        pool = ThreadPoolExecutor(1)
        try:
            starting = pool.submit(again.start, STARTUP_S)  # while the broker is still down
            wait_for(
                lambda: both_wait_for_a_broker(again),
                STARTUP_S,
                "the restarted worker and sink waiting for the broker",
            )
            broker.start()  # the same log: what was not committed is read again
            starting.result()
            wait_until_stored(again.settings, report)
        except AssertionError as exc:  # what each says it is doing, for the failure's report
            health = {"worker": again.worker_health(), "sink": again.sink_health()}
            raise AssertionError(f"{exc}; after the outage: {health}") from exc
        finally:
            again.stop()
            pool.shutdown()
        assert_ledger(again.settings, report, fault_figures)
        fault_figures.notes.update({f"stop s {role}": s for role, s in stop_s.items()})
        assert set(codes.values()) == {0}, (codes, *map(stop_log, deployment.children))
        assert max(stop_s.values()) <= GRACE_S, stop_s
    finally:
        broker.stop()


def both_wait_for_a_broker(deployment: Deployment) -> bool:
    """The worker and the sink started and, alive, saying they wait for a broker, in their log
    and on their web port: which only a wait without a deadline says (before, each exited 30 s
    into its start, with code 2), and its port answered nothing until the wait was over."""
    deployment.check_alive()
    return len(deployment.children) == 2 and all(
        "waiting for a broker at" in child.log_path.read_text(errors="replace")
        and says_it_waits_for_a_broker(child)
        for child in deployment.children
    )


def says_it_waits_for_a_broker(child: ChildProcess) -> bool:
    """``/healthz`` alive (a liveness probe leaves it be), ``/health`` "starting" (503) with the
    wait among its reasons."""
    port = child.bound_port()
    alive = port is not None and get_json(f"http://127.0.0.1:{port}/healthz")
    health = port is not None and get_json(f"http://127.0.0.1:{port}/health")
    return bool(alive and alive.get("starting") and health and health["status"] == "starting") and (
        "waiting for a broker at" in str(health["reasons"])
    )


def stop_log(child) -> str:
    """What ``child`` logged from its stop on, without librdkafka's connection attempts (an
    overdue stop's thread stacks are there)."""
    lines = child.log_path.read_text(errors="replace").splitlines()
    start = next((i for i, line in enumerate(lines) if "Signal received" in line), 0)
    quiet = [line for line in lines[start:] if "refused" not in line and "Connect to" not in line]
    return f"{child.name}:\n" + "\n".join(quiet[-80:])


def test_the_broker_command_exits_non_zero_when_its_broker_dies(tmp_path):
    """`stream-app broker` must not keep running beside a dead broker (a supervisor would
    never restart it): it exits 1 within seconds of the JVM's death."""
    state_dir = tmp_path / "broker"
    command = subprocess.Popen(  # the installed command, as a user runs it
        [sys.executable, "-m", "stream_app", "broker", "--port", "0", "--state-dir", state_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert command.stdout is not None
        assert b"listening on" in command.stdout.readline()  # ready: the broker answered

        def broker_pids() -> list[int]:
            marker = str(state_dir / "server.properties").encode()
            return [
                int(p.name)
                for p in Path("/proc").iterdir()
                if p.name.isdigit() and marker in _cmdline(p)
            ]

        (pid,) = broker_pids()
        os.kill(pid, signal.SIGKILL)
        assert command.wait(timeout=30) == 1
        assert b"the broker exited" in command.stdout.read()
    finally:
        command.kill()
        command.wait()


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


@pytest.mark.local_stack  # a broker of its own, stopped under a committing consumer
def test_a_commit_in_flight_when_the_broker_goes_neither_holds_a_stop_nor_its_close(
    make_settings, tmp_path
):
    """librdkafka's synchronous commit, in flight when the broker goes away, waits for the
    broker however long it is away, and a close meanwhile blocks for a minute (measured:
    :mod:`stream_app.kafka.blocking`). A consumer committing every 50 ms as a sink does, its
    broker stopped: once asked to stop, the commit gives up within its grace and the close
    within its timeout."""
    broker = LocalBroker(tmp_path / "broker").start()
    try:
        settings = on_its_own_broker(make_settings, broker, tmp_path)
        produce(settings, ProduceOptions(events=500, seed=41))
        consumer = Consumer(consumer_config(settings, settings.sink_group))
        consumer.subscribe([settings.topics.transactions])
        wait_for(lambda: bool(consumer.consume(100, 0.5)), 60, "records consumed")
        stopping, returned, outcomes = threading.Event(), threading.Event(), []

        def commit_until_stopped() -> None:
            offset = 0
            while not stopping.is_set():
                offset += 1
                try:
                    tp = (settings.topics.transactions, 0)
                    outcomes.append(
                        commit_offsets(consumer, {tp: offset}, stopping=stopping.is_set)
                    )
                except KafkaException as exc:  # a refusal other than the coordinator away
                    outcomes.append(exc)
                time.sleep(0.05)
            returned.set()

        threading.Thread(target=commit_until_stopped, daemon=True).start()
        time.sleep(1.0)
        broker.stop_process()
        time.sleep(3.0)  # a commit in flight is now waiting for the broker
        stopping.set()
        started = time.monotonic()
        assert returned.wait(10), "the commit held the stop"
        committed_s = time.monotonic() - started
        close_consumer(consumer)
        closed_s = time.monotonic() - started - committed_s
        assert committed_s <= 2.0 + 1.0, committed_s  # the stop grace of wait_bounded
        assert closed_s <= CLOSE_TIMEOUT_S + 1.0, closed_s
        assert outcomes[0] is True and outcomes[-1] is False, outcomes[
            -3:
        ]  # given up: not committed
    finally:
        broker.stop()


def transactional_producer(servers: str) -> Producer:
    """A transactional producer, asked again while the new node's coordinator loads."""
    deadline = time.monotonic() + 60
    while True:
        producer = Producer({"bootstrap.servers": servers, "transactional.id": "hanging"})
        try:
            producer.init_transactions(10)
            return producer
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.mark.local_stack  # a broker of its own, stopped with a transaction open
def test_a_transaction_left_open_without_its_coordinator_is_aborted_when_the_node_starts(
    tmp_path, caplog
):
    """What a stop of the only node can leave behind (fault 9 of ``docs/faults.md``), made on
    purpose: a transaction open on a data partition and on a group's offsets whose coordinator
    no longer knows it (its ``__transaction_state`` partitions deleted while the node was down).
    Nothing would ever complete it: ``read_committed`` readers stay at its first offset and the
    group's offsets are never readable (without the look at start: the offset fetch timed out
    and the readers' end stayed at 0). The start finds it and aborts it."""
    with LocalBroker(tmp_path / "broker") as broker:
        servers = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": servers})
        created = admin.create_topics([NewTopic("data", 1, 1), NewTopic("input", 1, 1)])
        for future in created.values():
            future.result(30)
        group = Consumer({"bootstrap.servers": servers, "group.id": "g"})
        producer = transactional_producer(servers)
        producer.begin_transaction()
        producer.produce("data", b"never committed")
        assert producer.flush(30) == 0
        offsets = [TopicPartition("input", 0, 5)]
        producer.send_offsets_to_transaction(offsets, group.consumer_group_metadata(), 30)
        broker.stop_process()
        for partition in (broker.state_dir / "log").glob("__transaction_state-*"):
            shutil.rmtree(partition)
        with caplog.at_level(logging.WARNING, logger="stream_app.kafka.hanging"):
            broker.start()
        with pytest.raises(BrokerError, match="already running"):
            broker.start()  # a second JVM on the same log would corrupt it
        aborted = {
            match.group(1)
            for record in caplog.records
            if record.name == "stream_app.kafka.hanging"
            and (match := re.search(r"left hanging: (\S+) from offset", record.getMessage()))
        }
        assert {"data[0]"} < aborted and any(a.startswith("__consumer_offsets[") for a in aborted)
        assert group.committed(offsets, timeout=30)[0].offset < 0  # discarded, and answered
        reader = Consumer(
            {"bootstrap.servers": servers, "group.id": "r", "isolation.level": "read_committed"}
        )
        # the record and the abort marker: the readers' end moved past both, nothing to read
        assert reader.get_watermark_offsets(TopicPartition("data", 0), timeout=30) == (0, 2)
        reader.close()
        group.close()
