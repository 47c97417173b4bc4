"""Run Apache Kafka (KRaft, one combined broker + controller node) on loopback.

Used where no Docker engine runs: by ``stream-app broker``, the demo, the benchmark and the
integration tests. The jars come from Maven once (:mod:`stream_app.kafka.kafka_jars`); the storage
is formatted on first start and the log lives in ``state_dir``, so a restart on the same directory
finds its topics, records and committed offsets again. Without ``state_dir`` the log is thrown away
on :meth:`LocalBroker.stop`.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from stream_app.errors import BrokerError
from stream_app.kafka.class_archive import ClassArchive
from stream_app.kafka.coordinators import await_coordinators
from stream_app.kafka.hanging import abort_hanging_transactions
from stream_app.kafka.kafka_jars import java_executable, kafka_jars
from stream_app.kafka.secure_listener import LISTENER, SecureListener
from stream_app.settings import Settings

BIND_ATTEMPTS = 5
NODE_ID = 1
STOP_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1

#: one node, fast tests: internal topics with one replica and few partitions, no delay before the
#: first rebalance, topics created explicitly (ensure_topics), transactions on one node
SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={node_id}@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={log_dir}
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# the controller fences a broker whose heartbeats it has not had for this long (default 9 s): on one
# node fencing its own broker fails every topic creation and produce ("All brokers are currently
# fenced") and hands nothing over; seen once in the suite, on a loaded 2-vCPU machine
broker.session.timeout.ms=60000
# 16 MB (Kafka's default 128 MB) is room for ~700,000 keys per cleaning of the compacted topics; the
# default's buffer kept the JVM's old generation at ~180 MB, and G1 in concurrent cycles
log.cleaner.dedupe.buffer.size=16777216
# one network thread and two request handlers for a node on a development machine (Kafka's
# defaults, 3 and 8, are for a server's cores): at 5,000 events/s the broker took 15-18 % of two
# CPUs instead of 17-21 %, every request handed between fewer threads (docs/benchmarks.md)
num.network.threads=1
num.io.threads=2
"""

#: warnings and errors, and the node's life (start, unfenced, shutdown): Kafka's INFO is ~2,500
#: lines per start
LOG4J2_PROPERTIES = """\
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
logger.lifecycle.name = org.apache.kafka.server.BrokerLifecycleManager
logger.lifecycle.level = INFO
"""


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A random cluster id in Kafka's form (URL-safe base64 of 16 bytes), never starting with
    ``-``: the storage tool would read such an id as an option and refuse to format (1 in 64
    draws), as Kafka's own ``Uuid.randomUuid`` avoids.

    >>> new_cluster_id(iter([bytes([0xFB]) + bytes(15), bytes(16)]).__next__)
    'AAAAAAAAAAAAAAAAAAAAAA'
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(draw()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on loopback now. Each socket stays bound until all are
    picked: picked one after the other, two could be the same port (the kernel hands a port out
    again once its socket is closed), and Kafka refuses two listeners on one port."""
    with ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the thread that started it ends (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LocalBroker:
    """A Kafka node on ``127.0.0.1:port``; a context manager that stops it on exit.

    ``port`` None picks free ports, and others if Kafka then finds them taken (a port cannot be
    reserved for another process). :meth:`stop` then :meth:`start` again reuses the same ports and
    log: clients reconnect to the address they know. The broker is also stopped when this process
    exits, or dies (the thread that started it, precisely).
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        port: int | None = None,
        *,
        jars_dir: Path | None = None,
        heap_mb: int = 512,
        secure_listener: bool = False,
    ) -> None:
        self._own_dir = state_dir is None
        self.state_dir = (state_dir or Path(tempfile.mkdtemp(prefix="kafka-"))).resolve()
        self._fixed_port = bool(port)  # 0: a free one
        self.port = port or 0
        self.controller_port = 0
        self._jars_dir = jars_dir
        self.heap_mb = heap_mb
        self._process: subprocess.Popen[bytes] | None = None
        self._archive: ClassArchive | None = None  # known once the jars are
        #: a SASL_SSL listener beside the plain one (``docs/kafka-security.md``)
        self.secure = None
        if secure_listener:
            self.secure = SecureListener(0, self.state_dir / "tls")
        self._pick_ports()

    @classmethod
    def for_settings(
        cls, settings: Settings, state_dir: Path | None = None, port: int | None = None
    ) -> LocalBroker:
        """A broker with the settings' jar cache and heap."""
        return cls(
            state_dir, port, jars_dir=settings.broker_jars_dir, heap_mb=settings.broker_heap_mb
        )

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's own log (appended across restarts)."""
        return self.state_dir / "broker.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """The JVM's process id, to read its memory and CPU time (raises if not started)."""
        if self._process is None:
            raise BrokerError("the broker is not started")
        return self._process.pid

    def start(self, timeout_s: float = 120.0) -> LocalBroker:
        """Start the node (formatting its storage on first start); return once it answers, its
        group and transaction coordinators included (:mod:`stream_app.kafka.coordinators`),
        within ``timeout_s`` of its launch (of each launch, when a port was taken).

        ``timeout_s`` is generous: a JVM loading ~90 jars took 7-8 s on two quiet cores and
        up to four times that on a busy machine. A node already running is refused: a second
        JVM on the same log corrupts it (seen: its metadata log's records failed their CRC).
        """
        if self.running:
            raise BrokerError(f"this node is already running (pid {self.pid}) on {self.state_dir}")
        java, libs = java_executable(), kafka_jars(self._jars_dir)
        self._archive = ClassArchive(java, libs)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        attempt = 1
        while True:
            properties = self._write_config(java)
            restart = (self.state_dir / "log" / "meta.properties").exists()
            if not restart:
                self._format(java, libs, properties)
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            launched_ms = int(time.time() * 1000)
            self._launch(java, libs, properties)
            atexit.register(self.stop)
            deadline = time.monotonic() + timeout_s
            try:
                if self._wait_ready(timeout_s):
                    await_coordinators(self.bootstrap_servers, deadline - time.monotonic())
                    if restart:  # what the last stop may have left hanging
                        abort_hanging_transactions(
                            self._jvm(java, libs, 256), self.bootstrap_servers, NODE_ID, launched_ms
                        )
                    return self
            except BaseException:  # Ctrl-C while waiting: nothing left running
                self.stop_process()
                raise
            output = self.log_file.read_bytes()[offset:].decode(errors="replace")
            self.stop_process()
            if "Address already in use" not in output or attempt == BIND_ATTEMPTS:
                tail = "\n".join(output.strip().splitlines()[-15:])
                raise BrokerError(
                    f"Kafka did not answer on {self.bootstrap_servers} within {timeout_s}s "
                    f"(log: {self.log_file}):\n{tail}"
                )
            self._pick_ports()
            attempt += 1

    def _pick_ports(self) -> None:
        """Free ports for the listeners, all different: the client one (unless it was given),
        the controller's, and the secure one if there is one."""
        count = 1 + (not self._fixed_port) + (self.secure is not None)
        ports = [p for p in free_ports(count + 1) if p != self.port][:count]
        if not self._fixed_port:
            self.port = ports.pop()
        self.controller_port = ports.pop()
        if self.secure is not None:
            self.secure = replace(self.secure, port=ports.pop())

    def _write_config(self, java: Path) -> Path:
        properties = self.state_dir / "server.properties"
        text = SERVER_PROPERTIES.format(
            node_id=NODE_ID,
            port=self.port,
            controller_port=self.controller_port,
            log_dir=self.state_dir / "log",
        )
        if self.secure is not None:
            self.secure.make_certificate(java)
            listener = f"{LISTENER}://{self.secure.bootstrap_servers}"
            text = text.replace("listeners=PLAINTEXT", f"listeners={listener},PLAINTEXT")
            text = text.replace("map=PLAINTEXT", f"map={LISTENER}:{LISTENER},PLAINTEXT")
            text += self.secure.server_properties()
        properties.write_text(text)
        (self.state_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        return properties

    def _jvm(self, java: Path, libs: Path, heap_mb: int, record: bool = False) -> list[str]:
        """A JVM on Kafka's jars; ``record``: the one that records the class archive if there is
        none yet (:mod:`stream_app.kafka.class_archive`)."""
        assert self._archive is not None
        return [
            str(java),
            # a fixed heap, as Kafka's own start script sets it: left to shrink, G1 kept ~150 MB
            # and ran mixed collections of up to 314 ms under the benchmark's paced load
            f"-Xms{heap_mb}m",
            f"-Xmx{heap_mb}m",
            # the parallel collector: a node's live set is small (~60 MB), and under the
            # benchmark's paced load its young pauses took 2-7 ms against G1's 10-20 (G1 with a
            # 20-ms goal, Java 25's G1 and Serial measured no better; docs/benchmarks.md, "The
            # latency phase alone"); a full collection of that live set took 117 ms
            "-XX:+UseParallelGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.properties'}",
            *self._archive.options(record=record),
            "-cp",
            f"{libs}/*",
        ]

    def _format(self, java: Path, libs: Path, properties: Path) -> None:
        cluster_id = new_cluster_id()
        command = [
            *self._jvm(java, libs, 256),
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            str(properties),
            *(self.secure.format_arguments() if self.secure else []),
        ]
        result = subprocess.run(  # noqa: S603  # a fixed argv
            command, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise BrokerError(f"formatting Kafka's storage failed: {result.stdout}{result.stderr}")

    def _launch(self, java: Path, libs: Path, properties: Path) -> None:
        with open(self.log_file, "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603  # a fixed argv
                [*self._jvm(java, libs, self.heap_mb, record=True), "kafka.Kafka", str(properties)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # a process group of its own, so that Ctrl-C in a terminal reaches us and we stop
                # it in order; not a session of its own: the kernel's autogroup scheduling gives
                # each session a CPU share of its own, and there the JVM's second GC thread waited
                # up to 147 ms for a CPU, the whole young pause with it (docs/benchmarks.md)
                process_group=0,
                preexec_fn=_die_with_parent,  # only prctl, before exec
            )

    def _wait_ready(self, timeout_s: float) -> bool:
        """A metadata request that lists this node: the port alone opens before it serves."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.running:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                time.sleep(0.1)
                continue
            admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
            while time.monotonic() < deadline and self.running:
                try:
                    if admin.list_topics(timeout=2).brokers:
                        return True
                except KafkaException:
                    pass
                time.sleep(0.1)
        return False

    def stop_process(self) -> None:
        """Stop the node (SIGTERM: Kafka's own clean shutdown; SIGKILL after 30 s); keep its log."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._archive is not None:
            self._archive.keep(clean_exit=process.returncode != -signal.SIGKILL)

    def stop(self) -> None:
        """Stop the node; a throw-away log (no ``state_dir`` given) goes with it."""
        self.stop_process()
        atexit.unregister(self.stop)
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
