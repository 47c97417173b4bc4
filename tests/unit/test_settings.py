"""Settings: environment, file, validation, immutability, secrets."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from stream_app.settings import CONFIG_FILE_ENV, Settings, Topics

DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
SetEnv = Callable[[dict[str, str]], None]


def test_defaults_run_the_embedded_setup() -> None:
    defaults = Settings()
    assert defaults.embedded_warehouse
    assert defaults.kafka_profile == "local"
    assert defaults.topics == Topics()
    assert ipaddress.ip_address(defaults.sql_host).is_loopback  # the SQL endpoint: this host only
    assert (defaults.schemas_dir / "registry.json").is_file()


def test_environment_with_prefix_and_nested_delimiter(env: SetEnv) -> None:
    env(
        {
            "STREAM_APP_BATCH_SIZE": "123",
            "STREAM_APP_ALERT_COOLDOWN_S": "0.25",
            "STREAM_APP_KAFKA_PROFILE": "default",
            "STREAM_APP_TOPICS__PARTITIONS": "8",
            "STREAM_APP_TOPICS__TRANSACTIONS": "tx-in",
            "BATCH_SIZE": "7",  # no prefix: not ours
        }
    )
    loaded = Settings()
    assert loaded.batch_size == 123
    assert loaded.alert_cooldown_s == 0.25
    assert loaded.kafka_profile == "default"
    assert loaded.topics.partitions == 8
    assert loaded.topics.transactions == "tx-in"
    assert loaded.topics.predictions == Topics().predictions


def test_settings_and_topics_are_frozen() -> None:
    loaded = Settings()
    with pytest.raises(ValidationError):
        loaded.batch_size = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        loaded.topics.partitions = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "name", ["", "1abc", "stream-app", "db; DROP DATABASE x", "a.b", "x" * 64, "name\n", "é"]
)
def test_invalid_database_names_are_refused(name: str, env: SetEnv) -> None:
    with pytest.raises(ValidationError):
        Settings(warehouse_database=name)
    env({"STREAM_APP_WAREHOUSE_DATABASE": name})
    if name:  # an empty variable is a value too, and refused like the others
        with pytest.raises(ValidationError):
            Settings()


@settings(deadline=None, max_examples=50)
@given(st.text(st.sampled_from("aZ_09 ;.-\n\té"), max_size=70))
def test_database_name_accepted_exactly_when_it_is_an_identifier(name: str) -> None:
    try:
        Settings(warehouse_database=name)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == bool(DATABASE_NAME.fullmatch(name)), name


@pytest.mark.parametrize(
    "values",
    [
        {"batch_size": 0},
        {"batch_size": 100_001},
        {"alert_cooldown_s": -1.0},
        {"decision_threshold": 0.5},  # removed: decisions use the model's threshold
        {"kafka_profile": "fast"},
        {"topics": {"partitions": 0}},
        {"no_such_setting": 1},
    ],
    ids=str,
)
def test_invalid_values_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)  # type: ignore[arg-type]


def write_config(tmp_path: Path, text: str, env: SetEnv) -> None:
    path = tmp_path / "stream_app.toml"
    path.write_text(text)
    env({CONFIG_FILE_ENV: str(path)})


def test_toml_file_named_by_the_environment(tmp_path: Path, env: SetEnv) -> None:
    write_config(
        tmp_path,
        'batch_size = 77\nworker_group = "from-file"\n[topics]\npartitions = 3\n',
        env,
    )
    loaded = Settings()
    assert (loaded.batch_size, loaded.worker_group, loaded.topics.partitions) == (
        77,
        "from-file",
        3,
    )


def test_environment_wins_over_file_and_arguments_over_both(tmp_path: Path, env: SetEnv) -> None:
    write_config(tmp_path, "batch_size = 77\nsink_batch_rows = 5\n", env)
    env({"STREAM_APP_BATCH_SIZE": "88"})
    assert Settings().batch_size == 88
    assert Settings().sink_batch_rows == 5
    assert Settings(batch_size=99).batch_size == 99


@pytest.mark.parametrize(
    "text", ["bacth_size = 1\n", "[topics]\npartitons = 3\n"], ids=["top-level", "nested"]
)
def test_typos_in_the_file_are_refused(tmp_path: Path, env: SetEnv, text: str) -> None:
    write_config(tmp_path, text, env)
    with pytest.raises(ValidationError):
        Settings()


def test_typo_in_a_nested_environment_variable_is_refused(env: SetEnv) -> None:
    env({"STREAM_APP_TOPICS__PARTITONS": "3"})
    with pytest.raises(ValidationError):
        Settings()


def test_secrets_are_hidden(env: SetEnv) -> None:
    env({"STREAM_APP_WAREHOUSE_PASSWORD": "hunter2-env", "STREAM_APP_SQL_TOKEN": "hunter2-token"})
    env({"STREAM_APP_KAFKA_SASL_PASSWORD": "hunter2-sasl"})
    loaded = Settings(schema_registry_secret=SecretStr("user:hunter2-arg"))
    for shown in (repr(loaded), str(loaded), loaded.model_dump_json()):
        assert "hunter2" not in shown
    assert loaded.warehouse_password is not None
    assert loaded.warehouse_password.get_secret_value() == "hunter2-env"


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_a_sasl_protocol_needs_a_user_and_a_password(protocol: str) -> None:
    with pytest.raises(ValidationError, match="needs kafka_sasl_username and kafka_sasl_password"):
        Settings(kafka_security_protocol=protocol, kafka_sasl_username="scorer")
    Settings(
        kafka_security_protocol=protocol,
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("p"),
    )


def test_derived_properties() -> None:
    loaded = Settings(sql_host="0.0.0.0", sql_port=9999, warehouse_dsn="http://ch:8123")  # noqa: S104
    assert loaded.sql_url == "http://0.0.0.0:9999"
    assert not loaded.embedded_warehouse
