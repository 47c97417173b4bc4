"""docker-compose.yml is wired to the real settings and CLI (no Docker engine needed).

Settings ignore an unknown ``STREAM_APP_`` variable, so names are checked against the fields;
values are checked by building ``Settings()`` from each service's environment.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pydantic import BaseModel

from stream_app.cli import app
from stream_app.settings import CONFIG_FILE_ENV, Settings
from tests.unit.support import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
PREFIX = "STREAM_APP_"
SHELL_OPERATORS = {"&&", "||", ";", "|", "(", ")", "&"}

Service = dict[str, Any]


@pytest.fixture(scope="module")
def services() -> dict[str, Service]:
    document = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, Service] = document["services"]
    return found


def image_environment() -> dict[str, str]:
    """``ENV`` of the Dockerfile (``KEY=value`` form, continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().upper().startswith("ENV "):
            for item in shlex.split(line.strip()[4:]):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def environment(service: Service) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(k): str(v) for k, v in raw.items()}


def invocations(service: Service) -> list[list[str]]:
    """Arguments of every ``stream-app`` call in the service's command (list, string or sh -c)."""
    command = service.get("command") or []
    tokens = shlex.split(command) if isinstance(command, str) else [str(t) for t in command]
    if tokens[:2] in (["sh", "-c"], ["bash", "-c"], ["/bin/sh", "-c"]):
        lexer = shlex.shlex(tokens[2], posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    calls: list[list[str]] = []
    segment: list[str] = []
    for token in [*tokens, ";"]:
        if token in SHELL_OPERATORS:
            if "stream-app" in segment:
                calls.append(segment[segment.index("stream-app") + 1 :])
            segment = []
        else:
            segment.append(token)
    return calls


def stream_app_services(services: dict[str, Service]) -> dict[str, Service]:
    return {name: s for name, s in services.items() if invocations(s)}


def subcommand(args: list[str]) -> str:
    """The (sub)command path of one invocation, after checking every option parses."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    remaining = list(args)
    while getattr(command, "commands", None) is not None:
        options = {opt: p for p in command.params for opt in getattr(p, "opts", [])}
        while remaining and remaining[0].startswith("-"):
            option = options.get(remaining.pop(0))
            assert option is not None, f"unknown option of {path or 'stream-app'} in {args}"
            if not getattr(option, "is_flag", False):
                remaining.pop(0)
        assert remaining, f"no subcommand in {args}"
        name = remaining.pop(0)
        assert name in command.commands, f"stream-app has no command {[*path, name]}"
        command = command.commands[name]
        path.append(name)
    try:
        command.make_context(" ".join(path), remaining)
    except Exception as exc:  # typer vendors click: its usage errors have no public base here
        pytest.fail(f"`stream-app {' '.join(args)}` does not parse: {exc}")
    return " ".join(path)


def check_name(variable: str) -> None:
    if variable == CONFIG_FILE_ENV:
        return
    top, _, nested = variable.removeprefix(PREFIX).lower().partition("__")
    field = Settings.model_fields.get(top)
    assert field is not None, f"{variable}: Settings has no field {top!r}"
    if nested:
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), f"{variable}: not nested"
        assert nested in model.model_fields, f"{variable}: {model.__name__} has no field {nested!r}"


def settings_of(service: Service, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the service's process builds: image ENV, then the compose environment."""
    env = {**image_environment(), **environment(service)}
    with monkeypatch.context() as patch:
        for name, value in env.items():
            if name.startswith(PREFIX) or name == CONFIG_FILE_ENV:
                patch.setenv(name, value)
        return Settings()


def published(service: Service) -> dict[int, int]:
    """Container port → host port of ``ports:`` entries like ``"9092:29092"`` (host:container)."""
    mapping: dict[int, int] = {}
    for entry in service.get("ports") or []:
        parts = str(entry).split("/")[0].split(":")
        mapping[int(parts[-1])] = int(parts[-2]) if len(parts) > 1 else int(parts[-1])
    return mapping


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1].split("/")[0])


def test_expected_services_exist(services: dict[str, Service]) -> None:
    assert {"kafka", "clickhouse", "init", "sink", "producer"} <= set(services)
    commands = {n: [subcommand(a) for a in invocations(s)] for n, s in services.items()}
    workers = [n for n, c in commands.items() if c == ["worker"]]
    assert len(workers) >= 2, commands
    assert commands["sink"] == ["sink"]
    assert commands["producer"] == ["produce"]
    assert commands["learner"] == ["learner"]
    assert commands["init"] == ["topics", "models train"]
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server")
    for name in stream_app_services(services):
        assert services[name].get("build") == ".", f"{name} must run the image of the Dockerfile"


def test_every_stream_app_subcommand_exists(services: dict[str, Service]) -> None:
    calls = [a for s in services.values() for a in invocations(s)]
    assert len(calls) >= 6
    for args in calls:
        subcommand(args)


def test_every_stream_app_variable_is_a_settings_field(services: dict[str, Service]) -> None:
    names = set(image_environment())
    for service in services.values():
        names |= set(environment(service))
    ours = {n for n in names if n.startswith(PREFIX) or n == CONFIG_FILE_ENV}
    assert len(ours) >= 5, ours
    for name in sorted(ours):
        check_name(name)
    for service in services.values():
        text = yaml.safe_dump(service)
        for name in re.findall(r"\b(STREAM_APP_[A-Z0-9_]+)", text):
            check_name(name)  # also in commands and interpolations


def test_name_check_catches_typos() -> None:
    for typo in ("STREAM_APP_BOOTSTRAP_SERVER", "STREAM_APP_TOPICS__PARTITONS", "STREAM_APP_X__Y"):
        with pytest.raises(AssertionError):
            check_name(typo)


def test_every_stream_app_service_builds_valid_settings(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in stream_app_services(services).items():
        built = settings_of(service, monkeypatch)
        assert built.bootstrap_servers == "kafka:9092", name
        assert built.kafka_profile == "default", name
        assert built.warehouse_dsn == "http://clickhouse:8123", name
        assert not built.embedded_warehouse
        assert built.schemas_dir == Path("/app/schemas")
        mounts = {str(v).split(":")[1] for v in service.get("volumes") or []}
        assert str(built.model_dir) in mounts, f"{name}: the model dir must be the shared volume"


def test_warehouse_password_matches_the_server(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = environment(services["clickhouse"])
    sink = settings_of(services["sink"], monkeypatch)
    assert sink.warehouse_password is not None
    assert sink.warehouse_password.get_secret_value() == server["CLICKHOUSE_PASSWORD"]
    assert server.get("CLICKHOUSE_USER", "default") == "default"  # the DSN names no user


def test_kafka_listeners_match_the_settings(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = environment(services["kafka"])
    listeners = dict(item.split("://") for item in kafka["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    inside = settings_of(services["sink"], monkeypatch).bootstrap_servers
    assert inside in advertised.values(), "containers must be told the address they use"
    default_port = port_of(Settings().bootstrap_servers)
    ports = published(services["kafka"])
    host_listener = [n for n, a in advertised.items() if a in (f"127.0.0.1:{default_port}",)]
    assert host_listener, "the host's default bootstrap address must be advertised"
    container_port = port_of(listeners[host_listener[0]])
    assert ports.get(container_port) == default_port, ports


def test_published_ports_match_the_settings(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    clickhouse = published(services["clickhouse"])
    dsn_port = port_of(settings_of(services["sink"], monkeypatch).warehouse_dsn)
    assert clickhouse.get(dsn_port) == 8123

    sink = settings_of(services["sink"], monkeypatch)
    if sink.embedded_warehouse:  # the sink serves read-only SQL itself
        assert published(services["sink"]).get(sink.sql_port) == Settings().sql_port
    else:  # ClickHouse answers SQL; nothing would listen on the sink's SQL port
        assert not published(services["sink"])

    host_ports: list[int] = []
    for name, service in stream_app_services(services).items():
        if [subcommand(a) for a in invocations(service)] != ["worker"]:
            continue
        built = settings_of(service, monkeypatch)
        assert built.worker_web_port == Settings().worker_web_port, name
        assert built.sql_host == "0.0.0.0", f"{name}: the web server must be reachable"  # noqa: S104
        ports = published(service)
        assert built.worker_web_port in ports, f"{name} does not publish its web port"
        host_ports.append(ports[built.worker_web_port])
    assert len(set(host_ports)) == len(host_ports) >= 2, host_ports


#: the long-running commands and the setting of the port their web server (with /readyz) uses
WEB_PORT = {"worker": "worker_web_port", "sink": "sql_port", "learner": "online_web_port"}


def test_long_running_services_are_checked_for_readiness(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = []
    for name, service in stream_app_services(services).items():
        commands = [subcommand(a) for a in invocations(service)]
        if len(commands) != 1 or commands[0] not in WEB_PORT:
            continue
        port = getattr(settings_of(service, monkeypatch), WEB_PORT[commands[0]])
        test = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/readyz" in test, f"{name}: {test}"
        assert service["restart"] == "unless-stopped", name
        checked.append(commands[0])
    assert set(checked) == set(WEB_PORT), checked


def test_the_learner_is_fed_and_reachable(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    learner = settings_of(services["learner"], monkeypatch)
    assert learner.sql_host == "0.0.0.0", "the web server must be reachable"  # noqa: S104
    assert published(services["learner"]).get(learner.online_web_port) == Settings().online_web_port
    mounts = {str(v).split(":")[1] for v in services["learner"]["volumes"]}
    assert str(learner.online_state_dir) in mounts, "the checkpoint must outlive the container"
    for name, service in stream_app_services(services).items():
        if [subcommand(a) for a in invocations(service)] == ["worker"]:
            assert settings_of(service, monkeypatch).online_features, f"{name} feeds no learner"


def test_startup_order(services: dict[str, Service]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert set(depends) <= set(services), f"{name} depends on unknown services"
    assert services["init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name, service in stream_app_services(services).items():
        if name != "init":
            condition = service["depends_on"]["init"]["condition"]
            assert condition == "service_completed_successfully", name
    assert services["sink"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"


def test_long_running_services_check_their_readiness(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = {"sink": "sql_port", "worker": "worker_web_port", "retrainer": "retrainer_web_port"}
    checked = []
    for name, service in stream_app_services(services).items():
        command = " ".join(subcommand(a) for a in invocations(service))
        if command not in ports:
            continue
        port = getattr(settings_of(service, monkeypatch), ports[command])
        assert f"http://127.0.0.1:{port}/readyz" in str(service["healthcheck"]["test"]), name
        checked.append(command)
    assert {"sink", "worker", "retrainer"} <= set(checked), checked


def test_build_context_has_what_the_image_needs() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    needed = {"pyproject.toml", "README.md", "stream_app", "models", "schemas"}
    assert not needed & ignored
    assert {".venv", ".git", "tests"} <= ignored
    assert "pip install" in DOCKERFILE.read_text()


# docker-compose.secure.yml: the same stack with every client-facing Kafka listener SASL_SSL

SECURE = REPO_ROOT / "docker-compose.secure.yml"
INTERPOLATION = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")


def secured_services() -> dict[str, Service]:
    """The override applied to the base file as compose merges them: environment maps merged,
    volumes merged by their target, other keys replaced; ``${X:?...}`` replaced by ``<X>``."""
    base: dict[str, Service] = yaml.safe_load(COMPOSE.read_text())["services"]
    text = INTERPOLATION.sub(lambda m: f"<{m.group(1)}>", SECURE.read_text())
    override: dict[str, Service] = yaml.safe_load(text)["services"]
    merged = {name: dict(service) for name, service in base.items()}
    for name, service in override.items():
        target = merged.setdefault(name, {})
        for key, value in service.items():
            if key == "environment":
                target[key] = {**environment(target), **environment({"environment": value})}
            elif key == "volumes":
                mounts = {str(v).split(":")[1]: v for v in [*target.get(key, []), *value]}
                target[key] = list(mounts.values())
            else:
                target[key] = value
    return merged


def broker_properties(kafka: Service) -> dict[str, str]:
    """The ``server.properties`` the secured broker's start script writes (comments skipped)."""
    script = kafka["command"][2]
    body = script.split("cat > /tmp/server.properties <<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
    return dict(line.split("=", 1) for line in body.splitlines() if not line.startswith("#"))


def test_secure_override_keeps_no_secret_in_the_file() -> None:
    text = SECURE.read_text()
    assert INTERPOLATION.search(text), "secrets come from the environment"
    for line in text.splitlines():
        if re.search(r"PASSWORD:\s", line) and not line.lstrip().startswith("#"):
            assert INTERPOLATION.search(line), f"a literal secret: {line.strip()}"


def test_secure_override_secures_every_listener_a_client_reaches() -> None:
    properties = broker_properties(secured_services()["kafka"])
    protocols = dict(p.split(":") for p in properties["listener.security.protocol.map"].split(","))
    advertised = [a.split("://")[0] for a in properties["advertised.listeners"].split(",")]
    assert advertised and all(protocols[name] == "SASL_SSL" for name in advertised), protocols
    assert properties["controller.listener.names"] not in advertised
    assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"


def test_every_secured_client_uses_the_user_and_certificate_the_broker_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = secured_services()
    script = services["kafka"]["command"][2]
    scram_user = re.search(r"--add-scram \"SCRAM-SHA-512=\[name=([^,]+),", script)
    assert scram_user, "the broker creates its SCRAM user when formatting its storage"
    certs = [str(v) for v in services["kafka-certs"]["volumes"]]
    volume, made_in = certs[0].split(":")[:2]
    assert f"-file {made_in}/ca.pem" in services["kafka-certs"]["command"][2]
    clients = stream_app_services(services)
    assert set(clients) == {
        "init",
        "sink",
        "worker-1",
        "worker-2",
        "learner",
        "producer",
        "retrainer",
    }
    for name, service in clients.items():
        built = settings_of(service, monkeypatch)
        assert built.kafka_security_protocol == "SASL_SSL", name
        assert built.kafka_sasl_username == scram_user.group(1), name
        assert built.kafka_sasl_password is not None
        assert built.kafka_sasl_password.get_secret_value() == "<KAFKA_PASSWORD>", name
        mounts = {str(v).split(":")[1]: str(v) for v in service["volumes"]}
        assert built.kafka_ssl_ca_location == Path(mounts["/certs"].split(":")[1]) / "ca.pem"
        assert mounts["/certs"] == f"{volume}:/certs:ro", f"{name}: the certificates, read-only"
        assert built.model_dir == Path("/data/models") and "/data/models" in mounts, name
