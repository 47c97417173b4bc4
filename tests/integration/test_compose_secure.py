"""docker-compose.secure.yml's own scripts, run here without Docker: they make the certificate and
start Apache Kafka (the same version as the image, from the local broker's jars) exactly as the
file says, and a client configured by the project's settings goes through SASL_SSL; a wrong
password is refused. Only what needs Docker is translated: the image's paths (``/opt/kafka/bin``,
``/certs``, ``/tmp``) to a temporary directory, and the compose network's addresses to free
loopback ports."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from stream_app.errors import BrokerError
from stream_app.kafka.config import connection_config
from stream_app.kafka.kafka_jars import java_executable, kafka_jars
from stream_app.kafka.local_broker import free_ports
from stream_app.kafka.probe import connect
from stream_app.settings import Settings
from tests.unit.support import REPO_ROOT

pytestmark = pytest.mark.local_stack

SECURE = REPO_ROOT / "docker-compose.secure.yml"
PASSWORDS = {"KAFKA_PASSWORD": uuid.uuid4().hex, "KAFKA_KEYSTORE_PASSWORD": uuid.uuid4().hex}


def _script(service: str, root: Path, ports: dict[str, int]) -> str:
    command = yaml.safe_load(SECURE.read_text())["services"][service]["command"]
    assert command[:2] == ["sh", "-ec"]
    text = str(command[2]).replace("$$", "$")  # compose's escape, as compose undoes it
    for old, new in (
        ("/tmp/", f"{root}/"),  # noqa: S108  # the image's path, translated
        ("/opt/kafka/bin", f"{root}/bin"),
        ("/certs", f"{root}/certs"),
    ):
        text = text.replace(old, new)
    text = re.sub(r"(\w+)://:\d+", lambda m: f"{m[1]}://127.0.0.1:{ports[m[1]]}", text)
    text = text.replace("kafka:9092", f"127.0.0.1:{ports['INTERNAL']}")
    text = text.replace("127.0.0.1:9092", f"127.0.0.1:{ports['HOST']}")
    text = text.replace("1@kafka:9093", f"1@127.0.0.1:{ports['CONTROLLER']}")
    return text.replace("chown 1000", "true")  # the image's user; here we are that user


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    root = tmp_path_factory.mktemp("secure-compose")
    libs, java = kafka_jars(), java_executable()
    (root / "bin").mkdir()
    (root / "certs").mkdir()
    tools = {"kafka-storage.sh": "kafka.tools.StorageTool", "kafka-server-start.sh": "kafka.Kafka"}
    for name, main in tools.items():
        (root / "bin" / name).write_text(
            f'#!/bin/sh\nexec {java} -Xmx384m -cp "{libs}/*" {main} "$@"\n'
        )
        (root / "bin" / name).chmod(0o755)
    ports = dict(zip(("INTERNAL", "HOST", "CONTROLLER"), free_ports(3), strict=True))
    env = {**os.environ, **PASSWORDS, "PATH": f"{java.parent}:{os.environ['PATH']}"}
    certs = subprocess.run(  # the compose file's script
        ["sh", "-ec", _script("kafka-certs", root, ports)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert certs.returncode == 0, certs.stderr
    log = (root / "kafka.out").open("wb")
    broker = subprocess.Popen(
        ["sh", "-ec", _script("kafka", root, ports)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield root, ports["HOST"]
    finally:
        os.killpg(broker.pid, signal.SIGTERM)
        broker.wait(timeout=60)
        log.close()


def _client(root: Path, port: int, password: str) -> Settings:
    return Settings(
        bootstrap_servers=f"127.0.0.1:{port}",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="stream-app",
        kafka_sasl_password=password,
        kafka_ssl_ca_location=root / "certs" / "ca.pem",
    )


def test_the_secured_stack_broker_serves_authenticated_clients(
    secured_broker: tuple[Path, int],
) -> None:
    root, port = secured_broker
    settings = _client(root, port, PASSWORDS["KAFKA_PASSWORD"])
    admin, _ = connect(settings, timeout_s=90)
    for created in admin.create_topics([NewTopic("secured", 1, 1)]).values():
        created.result(timeout=30)
    producer = Producer(connection_config(settings))
    producer.produce("secured", b"through SASL_SSL")
    assert producer.flush(30) == 0
    consumer = Consumer(
        {**connection_config(settings), "group.id": "secured", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(["secured"])
    try:
        message = None
        for _ in range(30):
            message = consumer.poll(1)
            if message is not None and message.error() is None:
                break
        assert message is not None and message.value() == b"through SASL_SSL"
    finally:
        consumer.close()
    plain = (root / "server.properties").read_text()
    assert PASSWORDS["KAFKA_PASSWORD"] not in SECURE.read_text()
    assert (
        "PLAINTEXT" not in plain.split("listener.security.protocol.map=")[1].split("CONTROLLER")[0]
    )


def test_the_secured_stack_broker_refuses_a_wrong_password(
    secured_broker: tuple[Path, int],
) -> None:
    root, port = secured_broker
    with pytest.raises(BrokerError, match="invalid credentials"):
        connect(_client(root, port, "not-the-password"), timeout_s=60)
