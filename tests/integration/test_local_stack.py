"""The shared local stack: no port is picked for a child that can pick its own, and the broker,
which cannot, starts again on other ports when its picked ones were taken."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_INVALID, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from stream_app.kafka.class_archive import ClassArchive
from stream_app.kafka.kafka_jars import java_executable, kafka_jars
from stream_app.kafka.local_broker import LocalBroker
from stream_app.processes import ChildProcess, get_json
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_ports_taken_before_the_children_bind_do_not_stop_the_sink_or_a_worker(
    make_settings, tmp_path
):
    """The race of a port picked free in the parent: another process binds it before the child
    does. Here something holds the very ports the settings name when the children start."""
    settings = make_settings(warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}")
    address = settings.sql_host
    with (
        socket.create_server((address, settings.sql_port)),
        socket.create_server((address, settings.worker_web_port)),
    ):
        sink = ChildProcess("sink", ["sink"], settings, tmp_path)
        worker = ChildProcess("worker", ["worker"], settings, tmp_path)
        try:
            for child in (sink, worker):
                url = child.web_url("/health")  # fails if the child exits: "address in use"
                wait_for(lambda u=url: get_json(u) is not None, 90, f"{child.name} serving")
        finally:
            codes = [child.stop() for child in (worker, sink)]
    assert codes == [0, 0], [child.log_path.read_text()[-2000:] for child in (worker, sink)]


@pytest.mark.local_stack  # a broker of its own
def test_a_broker_whose_picked_ports_are_taken_before_it_binds_starts_on_others(tmp_path):
    """Kafka cannot bind port 0 and report it: the node retries with other ports when its
    listeners find theirs taken (here, every port it picked is taken before it starts)."""
    broker = LocalBroker(tmp_path / "broker")
    picked = (broker.port, broker.controller_port)
    with (
        socket.create_server(("127.0.0.1", picked[0])),
        socket.create_server(("127.0.0.1", picked[1])),
    ):
        try:
            broker.start()
            admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
            assert admin.list_topics(timeout=10).brokers
            assert broker.port not in picked
        finally:
            broker.stop()


@pytest.mark.local_stack  # a broker of its own
def test_a_started_node_already_serves_groups_and_transactions(tmp_path):
    """Ready means the coordinators answer too: a fresh node makes its internal topics on the
    first request that needs them, and answers NOT_COORDINATOR until then, so a new group's
    first offset fetch has nothing to wait for once the node is said to be up."""
    with LocalBroker(tmp_path / "broker") as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        internal = set(admin.list_topics(timeout=10).topics)
        assert {"__consumer_offsets", "__transaction_state"} <= internal, internal
        group = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "first"})
        try:
            (fetched,) = group.committed([TopicPartition("any", 0)], timeout=10)
        finally:
            group.close()
        assert fetched.offset == OFFSET_INVALID  # nothing committed, and no error raised


@pytest.mark.local_stack  # brokers of its own
def test_a_node_maps_the_class_archive_a_clean_stop_recorded(tmp_path):
    """The first node stopped cleanly records the classes it loaded when there is no archive;
    every later JVM on the same jars maps that archive instead of loading them again."""
    archive = ClassArchive(java_executable(), kafka_jars()).path
    # as on a fresh machine (a JVM mapping the old file keeps it; a node started meanwhile
    # records one too, and the last clean stop's becomes the archive)
    archive.unlink(missing_ok=True)
    LocalBroker(tmp_path / "first").start().stop()
    assert archive.is_file()
    with LocalBroker(tmp_path / "second") as second:
        maps = Path(f"/proc/{second.pid}/maps").read_text()
    assert str(archive) in maps


def test_the_broker_has_a_process_group_of_its_own_in_its_starters_session(local_stack):
    """Ctrl-C in a terminal goes to the foreground process group: not to the broker, which the
    stack stops in order. A session of its own would put the JVM in a scheduling group of its
    own (the kernel's autogroup), where its GC threads were measured waiting for a CPU."""
    broker = local_stack.broker
    assert broker is not None
    assert os.getpgid(broker.pid) == broker.pid != os.getpgid(0)
    assert os.getsid(broker.pid) == os.getsid(0)
