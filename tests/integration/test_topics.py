"""Topics are checked at start, never auto-created, and the status topic is read in full."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import Producer

# NewTopic is exported by the C extension, which its stubs do not list
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from stream_app.catalogue import separate_topics
from stream_app.cli import app
from stream_app.codecs.factory import schema_registry
from stream_app.control.client import StatusReader, live_workers
from stream_app.control.commands import ControlCodecs, ControlStatus
from stream_app.errors import BrokerError
from stream_app.events import HEARTBEAT
from stream_app.kafka.config import admin_config, producer_config
from stream_app.kafka.topics import check_topics, wanted_topics
from stream_app.online.service import OnlineLearnerLoop
from stream_app.processes import ChildProcess, get_json, settings_env, wait_until
from stream_app.scoring.build import build_loop
from stream_app.settings import Settings
from stream_app.warehouse.service import build_ingest
from tests.unit.support import SCHEMAS_DIR, snapshot

pytestmark = pytest.mark.integration


def create_topic(settings: Settings, partitions: int, config: dict[str, str]) -> str:
    name = f"made-by-hand-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(admin_config(settings))
    topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)
    admin.create_topics([topic])[name].result(timeout=30)
    deadline = time.monotonic() + 30
    while name not in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.1)
    return name


def with_topic(settings: Settings, **names: str) -> Settings:
    return settings.model_copy(update={"topics": settings.topics.model_copy(update=names)})


def test_the_sink_refuses_a_topic_with_another_partition_count(make_settings):
    settings = make_settings()
    one_partition = create_topic(settings, 1, {})
    with pytest.raises(BrokerError, match=f"{one_partition}: 1 partitions, expected 4"):
        build_ingest(with_topic(settings, predictions=one_partition))


def test_the_sink_refuses_a_missing_topic_and_does_not_create_it(make_settings):
    settings = make_settings()
    missing = f"never-made-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BrokerError, match=f"{missing}: missing"):
        build_ingest(with_topic(settings, alerts=missing))
    assert missing not in AdminClient(admin_config(settings)).list_topics(timeout=10).topics


def test_a_worker_refuses_a_control_topic_that_is_not_compacted(make_settings):
    settings = make_settings()
    not_compacted = create_topic(settings, 1, {"cleanup.policy": "delete"})
    with pytest.raises(
        BrokerError, match=f"{not_compacted}: cleanup.policy=delete, expected compact"
    ):
        build_loop(with_topic(settings, control=not_compacted))


def test_a_producer_does_not_auto_create_a_topic(make_settings):
    settings = make_settings()
    missing = f"never-made-{uuid.uuid4().hex[:8]}"
    producer = Producer(producer_config(settings, **{"message.timeout.ms": 3000}))
    producer.produce(missing, b"value", b"key")
    assert producer.flush(10) == 0  # delivered or failed: failed, as the topic stays missing
    assert missing not in AdminClient(admin_config(settings)).list_topics(timeout=10).topics


def test_the_cli_reads_every_partition_of_the_status_topic(make_settings):
    settings = make_settings()
    status_topic = create_topic(settings, 3, {})  # as a broker's auto-creation could leave it
    settings = with_topic(settings, control_status=status_topic)
    codecs = ControlCodecs(settings, schema_registry(settings))
    producer = Producer(producer_config(settings))
    now_ms = int(time.time() * 1000)
    workers = [f"worker-{p}" for p in range(3)]
    for partition, worker in enumerate(workers):
        status = ControlStatus(
            "c", HEARTBEAT, None, worker, "alive", "", "1", None, 0.0, now_ms + partition
        )
        producer.produce(status_topic, codecs.encode_status(status), worker.encode(), partition)
    assert producer.flush(30) == 0

    reader = StatusReader(settings)
    try:
        assert live_workers(reader, within_s=60) == set(workers)
    finally:
        reader.close()


def test_stream_app_topics_creates_the_catalogue_and_writes_no_schema_file(
    infrastructure, tmp_path, monkeypatch
):
    """Every topic renamed: `stream-app topics` creates each topic of the catalogue as the
    start-up check wants it, and the repository's ``schemas/`` stays as it is."""
    settings = Settings(
        bootstrap_servers=infrastructure.bootstrap_servers,
        topics=separate_topics(f"cli-{uuid.uuid4().hex[:8]}", partitions=2),
        schema_registry_dir=tmp_path / "registered",
    )
    assert settings.schemas_dir == SCHEMAS_DIR
    before = snapshot(SCHEMAS_DIR)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    every_topic = tuple(wanted_topics(settings))
    with pytest.raises(BrokerError, match="missing"):
        check_topics(settings, every_topic)
    result = CliRunner().invoke(app, ["topics"])
    assert result.exit_code == 0, result.output
    check_topics(settings, every_topic)
    assert snapshot(SCHEMAS_DIR) == before


class LatePort:
    """A loopback port that refuses connections until :meth:`open`, then forwards each to
    ``target`` (host, port): a broker that comes back at its address."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))  # bound, not listening: a connection is refused
        self.port = self._server.getsockname()[1]

    def open(self) -> None:
        self._server.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # closed
            while True:
                client, _ = self._server.accept()
                upstream = socket.create_connection(self._target)
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._server.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with source, sink, contextlib.suppress(OSError):  # the other direction closed both
            while data := source.recv(65536):
                sink.sendall(data)


def test_the_learner_started_before_its_broker_waits_for_it(make_settings, caplog):
    """A long-running process's start-up check (the worker's, the sink's, the learner's and
    the retrainer's: ``broker_wait_s=None``) waits for a broker that does not answer yet,
    saying so, and goes on once one answers, where a command's check gives up. Here the
    learner (the worker and the sink: ``test_broker_restart.py``)."""
    settings = make_settings()
    host, port = settings.bootstrap_servers.split(",")[0].rsplit(":", 1)
    late = LatePort((host, int(port)))
    away = settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{late.port}"})
    with pytest.raises(BrokerError, match="cannot reach"):
        check_topics(away, (away.topics.labels,), broker_wait_s=1.0)
    with ThreadPoolExecutor(1) as pool:
        learner = pool.submit(OnlineLearnerLoop, away)
        time.sleep(3.0)
        assert not learner.done()
        assert "waiting for a broker at 127.0.0.1:" in caplog.text
        late.open()
        try:
            loop = learner.result(timeout=60)  # its topics checked through the late port
            loop.stop()
            loop.run()  # assigns its partitions, checkpoints, closes its consumer
        finally:
            late.close()


def test_a_learner_process_waiting_for_its_broker_answers_on_its_port(make_settings, tmp_path):
    """From its first moment the process answers on its web port: alive, and "starting" with
    the wait on ``/health`` (before, the port stayed closed until the broker answered, and a
    liveness probe with a deadline killed a process that was only waiting). Once the broker
    answers, its own pages take over the same port."""
    settings = make_settings(online_web_port=0)
    host, port = settings.bootstrap_servers.split(",")[0].rsplit(":", 1)
    late = LatePort((host, int(port)))
    away = settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{late.port}"})
    learner = ChildProcess("learner", ["learner"], away, tmp_path)
    try:
        wait_until(lambda: learner.bound_port() is not None, 60, "the learner's port bound")
        url = f"http://127.0.0.1:{learner.bound_port()}"

        def waiting() -> bool:
            learner.check_alive()
            health = get_json(f"{url}/health") or {}
            return "waiting for a broker at 127.0.0.1:" in str(health.get("reasons"))

        wait_until(waiting, 60, "/health saying the learner waits for its broker")
        assert get_json(f"{url}/healthz") == {"status": "alive", "starting": True}
        late.open()
        assert learner.web_port(90) == int(url.rsplit(":", 1)[1])  # the same socket, serving
        assert get_json(f"{url}/healthz") == {"status": "alive"}
        assert (get_json(f"{url}/health") or {}).get("status") != "starting"
    finally:
        assert learner.stop() == 0, learner.log_path.read_text()[-3000:]
        late.close()
