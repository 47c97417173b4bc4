"""Real infrastructure, started once per test session, and factories for per-test isolation.

The session's stack (:class:`stream_app.devtools.stack.LocalStack`, as the demo and the benchmark
use it): without a Docker engine (this machine, CI) the local broker (Apache Kafka, one KRaft
node, a throw-away log) and chDB; with one, testcontainers' Kafka and ClickHouse server (never
run here). Each test gets its own topics, consumer groups and warehouse database. Tests marked
``local_stack`` start a broker or a chDB directory of their own and run on those either way
(docs/contributing.md, "What runs where").
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from models.registry import FileModelStore
from models.train import TrainingConfig, train_model
from stream_app.devtools.produce import ProduceOptions, ProduceReport, produce
from stream_app.devtools.stack import LocalStack
from stream_app.errors import WarehouseUnavailable
from stream_app.kafka.commit import COORDINATOR_AWAY
from stream_app.kafka.config import consumer_config, range_reader_config
from stream_app.kafka.drain import read_to_end
from stream_app.processes import ChildProcess, get_json, settings_env
from stream_app.scoring.build import build_loop
from stream_app.scoring.loop import ScoringLoop
from stream_app.settings import Settings
from stream_app.warehouse.client import chdb_directory
from stream_app.warehouse.ingest import WarehouseIngest
from stream_app.warehouse.service import build_ingest
from stream_app.warehouse.sql import query_rows
from tests.conftest import OPENED_HERE
from tests.integration.faults import FIGURES_PROPERTY, FaultFigures

pytestmark = pytest.mark.integration


def json_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The log lines of a process run with ``--log-json``, as JSON objects; any other line fails
    the test (librdkafka's own ``%3|…|FAIL|…``, faust's start-up spinner, a text log line)."""
    other = [line for line in lines if line.strip() and not line.startswith("{")]
    assert not other, other[:3]
    return [json.loads(line) for line in lines if line.strip()]


@functools.cache
def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@pytest.fixture(autouse=True)
def _needs_the_local_stack(request: pytest.FixtureRequest) -> None:
    """Tests marked ``local_stack`` start a local broker or need chDB whatever the session runs
    on: on testcontainers they are skipped rather than run against something else."""
    if request.node.get_closest_marker("local_stack") and docker_engine_answers():
        pytest.skip("needs the local stack (Kafka from its jars, chDB); this session: containers")


@dataclass(frozen=True)
class Infrastructure:
    bootstrap_servers: str
    warehouse_dsn: str
    kind: str


@pytest.fixture(scope="session")
def local_stack(
    tmp_path_factory: pytest.TempPathFactory, chdb_directory: Path
) -> Iterator[LocalStack]:
    """The session's stack: testcontainers' Kafka and ClickHouse server with a Docker engine
    (untested here: this machine has none), else the local broker (a throw-away log) and chDB."""
    state_dir = tmp_path_factory.mktemp("stack")
    if docker_engine_answers():
        from testcontainers.clickhouse import ClickHouseContainer
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka, ClickHouseContainer() as clickhouse:
            host, port = clickhouse.get_container_host_ip(), clickhouse.get_exposed_port(8123)
            dsn = f"http://{clickhouse.username}:{clickhouse.password}@{host}:{port}"
            yield LocalStack(
                state_dir, bootstrap_servers=kafka.get_bootstrap_server(), warehouse_dsn=dsn
            ).start()
        return
    warehouse_dsn = f"chdb://{chdb_directory}"
    with LocalStack(state_dir, warehouse_dsn=warehouse_dsn, keep_broker_log=False) as stack:
        yield stack


@pytest.fixture(scope="session")
def infrastructure(local_stack: LocalStack) -> Infrastructure:
    kind = "local" if local_stack.broker else "testcontainers"
    return Infrastructure(local_stack.bootstrap_servers, local_stack.warehouse_dsn, kind)


@pytest.fixture(scope="session")
def model_dir(local_stack: LocalStack) -> Path:
    """A small champion model, trained once per session."""
    local_stack.ensure_model(TrainingConfig(events=20_000, num_trees=40), lambda _: None)
    return local_stack.model_dir


@pytest.fixture(scope="session")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry of v1 champion and v2 a good alternative (another seed, not promoted), trained
    once per session: a module copies it (:func:`copy_registry`) and adds the versions it needs."""
    directory = tmp_path_factory.mktemp("two-models")
    store = FileModelStore(directory)
    train_model(store, TrainingConfig(events=20_000, num_trees=30))
    train_model(store, TrainingConfig(events=20_000, num_trees=60, seed=2), promote=False)
    return directory


SettingsFactory = Callable[..., Settings]


@pytest.fixture(scope="session")
def drift_champion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose champion learnt from 40,000 events at the retraining streams' fraud rate
    (5 %), trained once per session: a stream whose fraud moves gives a better candidate."""
    directory = tmp_path_factory.mktemp("retrain-champion")
    train_model(FileModelStore(directory), TrainingConfig(events=40_000, fraud_rate=0.05,
                                                          num_trees=60))  # fmt: skip
    return directory


def sink_process(
    make_settings: SettingsFactory, model_dir: Path, tmp_path: Path, **overrides: Any
) -> tuple[ChildProcess, Settings, FileModelStore]:
    """The sink as its own process on its own chDB directory, as in production; settings that
    query its endpoint, and this test's copy of the registry at ``model_dir``."""
    registry = copy_registry(model_dir, tmp_path / "models")
    settings = make_settings(
        model_dir=tmp_path / "models", warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}",
        **overrides,
    )  # fmt: skip
    sink = ChildProcess("sink", ["sink"], settings, tmp_path)
    return sink, settings.model_copy(update={"sql_port": sink.web_port()}), registry


def copy_registry(source: Path, target: Path) -> FileModelStore:
    """A copy of the registry at ``source``, at ``target`` (created, or empty)."""
    shutil.copytree(source, target, dirs_exist_ok=True)
    return FileModelStore(target)


@pytest.fixture
def make_settings(local_stack: LocalStack, model_dir: Path, tmp_path: Path) -> SettingsFactory:
    """Settings with this test's own topics, groups and database (topics created); web servers
    of processes started on them bind free ports (``ChildProcess.web_port``)."""
    name = f"t-{uuid.uuid4().hex[:10]}"

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_dir": model_dir,
            "schema_registry_dir": tmp_path / "schema-registry",  # topic names differ per test
            "batch_size": 500,
            "sink_flush_interval_ms": 200,
        }
        return local_stack.settings(name, **(values | overrides))

    return factory


@dataclass
class Running:
    loop: Any
    thread: threading.Thread


@contextmanager
def in_thread(
    runner: ScoringLoop | WarehouseIngest, stop_timeout_s: float = 60.0
) -> Iterator[Running]:
    """Run a loop's ``run`` in a thread; stop and join it on exit. Its own exception is raised
    then, and a thread that does not stop within ``stop_timeout_s`` fails the test."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            runner.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield Running(runner, thread)
    finally:
        runner.stop()
        thread.join(stop_timeout_s)
        # raised here, chained to any failure of the body: the thread's own error is never lost
        if failure:
            raise failure[0]
        if thread.is_alive():
            raise AssertionError(
                f"{type(runner).__name__}.run did not stop within {stop_timeout_s} s"
            )


@pytest.fixture
def running_sink() -> Callable[[Settings], Any]:
    def start(settings: Settings) -> Any:
        return in_thread(build_ingest(settings))

    return start


@pytest.fixture
def running_worker() -> Callable[[Settings], Any]:
    def start(settings: Settings) -> Any:
        return in_thread(build_loop(settings))

    return start


@contextmanager
def serving_sink(settings: Settings, log_dir: Path) -> Iterator[tuple[ChildProcess, Settings]]:
    """A sink process on ``settings``, ready, and the settings naming its SQL port; stopped on
    exit, where an exit code other than 0 fails the test."""
    sink = ChildProcess("sink", ["sink"], settings, log_dir)
    try:
        ready = sink.web_url("/readyz")
        wait_for(lambda: (get_json(ready) or {}).get("status") == "ready", 90, ready)
        yield sink, settings.model_copy(update={"sql_port": sink.web_port()})
    finally:
        code = sink.stop()
    assert code == 0, sink.log_path.read_text()[-3000:]


def read_topic(
    settings: Settings, topic: str, expected: int, timeout_s: float = 60.0
) -> list[Message]:
    """Every record of ``topic`` from the beginning: once ``expected`` have arrived (or
    ``timeout_s`` has passed), on to each partition's end as the broker reports it then (its high
    watermark; read committed, a transaction still open there holds the read to its timeout), so
    that records beyond those expected are in the list too. A range reader: each partition's end
    is asked without waiting behind the last partition's fetch (``range_reader_config``)."""
    consumer = Consumer(range_reader_config(settings, f"reader-{uuid.uuid4().hex[:8]}"))
    partitions = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    records: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(m for m in consumer.consume(10_000, 0.2) if m.error() is None)
        after = {m.partition(): (m.offset() or 0) + 1 for m in records}
        for p in partitions:
            start = TopicPartition(topic, p, after.get(p, OFFSET_BEGINNING))
            records.extend(read_to_end(consumer, start))
    finally:
        consumer.close()
    return records


@contextmanager
def producing(settings: Settings, options: ProduceOptions) -> Iterator[dict[str, ProduceReport]]:
    """``produce`` in a thread while the block runs; its report under ``"report"`` once joined."""
    result: dict[str, ProduceReport] = {}
    thread = threading.Thread(target=lambda: result.update(report=produce(settings, options)))
    thread.start()
    try:
        yield result
    finally:
        thread.join(120)


#: a read-only query in a child process: ``query_rows`` on the settings of its environment
_CHILD_QUERY = (
    "import json, sys; from stream_app.settings import Settings;"
    " from stream_app.warehouse.sql import query_rows;"
    " print(json.dumps(query_rows(Settings(), sys.argv[1], open_locally=True)))"
)


def query_warehouse(settings: Settings, query: str) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of a read-only query: through the sink's SQL endpoint while one
    serves the warehouse, else opened here if it is this process's chDB directory (chDB opens
    one per process, tests/conftest.py) or a server, else by a child process."""
    try:
        return query_rows(settings, query)
    except WarehouseUnavailable:
        if chdb_directory(settings.warehouse_dsn) in OPENED_HERE:
            return query_rows(settings, query, open_locally=True)
    child = subprocess.run(  # this interpreter, the query a test's own
        [sys.executable, "-c", _CHILD_QUERY, query],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, f"{query!r} in a child process: {child.stderr[-2000:]}"
    names, rows = json.loads(child.stdout)
    return names, rows


def count(settings: Settings, query: str) -> int:
    """The single number a ``SELECT count() ...`` answers, through the warehouse's endpoint."""
    return int(query_warehouse(settings, query)[1][0][0])


STORED = (
    "SELECT (SELECT count() FROM predictions), (SELECT count() FROM dead_letters),"
    " (SELECT count() FROM events), (SELECT count() FROM labels)"
)


def stored_counts(settings: Settings) -> tuple[int, ...]:
    """Rows of ``predictions``, ``dead_letters``, ``events`` and ``labels`` in the warehouse."""
    ((*counts,),) = query_warehouse(settings, STORED)[1]
    return tuple(int(n) for n in counts)


def wait_until_stored(
    settings: Settings,
    report: ProduceReport,
    timeout_s: float = 120.0,
    since: tuple[int, ...] = (0, 0, 0, 0),
) -> None:
    """Until every produced record has a prediction or a dead-letter row, every valid one an
    ``events`` row (or more: replays) and every label sent a ``labels`` row, on top of the rows
    counted ``since`` (``stored_counts`` before producing into a warehouse already in use)."""
    added = (report.valid, report.malformed, report.valid, report.labels)
    wanted = tuple(before + n for before, n in zip(since, added, strict=True))
    wait_for(
        lambda: all(n >= w for n, w in zip(stored_counts(settings), wanted, strict=True)),
        timeout_s,
        "every produced record stored",
    )


def assert_ledger(
    settings: Settings, report: ProduceReport, figures: FaultFigures | None = None
) -> None:
    """The ledger check: every valid event the broker acknowledged is stored once (``events``)
    and has exactly one prediction row, no event id twice, one dead letter per malformed record.
    With ``figures``, notes what was lost, duplicated and replayed (prediction records beyond
    one per event) before checking."""
    ((events, scored, predictions, unique, dead_letters),) = query_warehouse(
        settings,
        "SELECT (SELECT count() FROM events),"
        " (SELECT count() FROM events WHERE event_id IN (SELECT event_id FROM predictions)),"
        " (SELECT count() FROM predictions), (SELECT uniqExact(event_id) FROM predictions),"
        " (SELECT count() FROM dead_letters)",
    )[1]
    if figures is not None:
        records = read_topic(settings, settings.topics.predictions, report.valid)
        figures.lost, figures.duplicated = report.valid - scored, predictions - unique
        figures.replayed = len(records) - report.valid
        print(f"\n{figures}")  # in the test's output too
    assert (events, scored) == (report.valid, report.valid)
    assert (predictions, unique) == (report.valid, report.valid)
    assert dead_letters == report.malformed


@pytest.fixture
def fault_figures(request: pytest.FixtureRequest) -> Iterator[FaultFigures]:
    """This fault test's figures, handed at its end to the run's summary
    (:class:`tests.integration.faults.FaultSummary`) through the test's report."""
    figures = FaultFigures(request.node.name.removeprefix("test_"))
    yield figures
    request.node.user_properties.append((FIGURES_PROPERTY, asdict(figures)))


def committed_offsets(consumer: Consumer, partitions: list[TopicPartition]) -> list[int]:
    """The group's committed offsets (negative: none), asked again while the coordinator is
    away (a fresh broker loads its offsets topic at the first request)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return [tp.offset for tp in consumer.committed(partitions, timeout=10)]
        except KafkaException as exc:
            if exc.args[0].code() not in COORDINATOR_AWAY or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def committed(settings: Settings, group: str) -> int:
    """Records of the transactions topic ``group`` has committed, over every partition."""
    consumer = Consumer(consumer_config(settings, group))
    topic = settings.topics.transactions
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topics.partitions)]
        return sum(max(offset, 0) for offset in committed_offsets(consumer, partitions))
    finally:
        consumer.close()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what or predicate}")


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 256 MB tmpfs (needs the right to mount: root, or CAP_SYS_ADMIN)."""
    mount_point = tmp_path / "small-fs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(filler: Path) -> None:
    """Write zeros to ``filler`` until its filesystem is full."""
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True, check=False
    )
