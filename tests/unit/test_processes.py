"""Child processes get the parent's settings through the environment, unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from stream_app.processes import settings_env
from stream_app.settings import Settings, Topics

text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
names = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=20)


def round_trip(original: Settings) -> Settings:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings_env(original).items():
            patch.setenv(name, value)
        return Settings()


def non_default(name: str) -> object:
    """A valid value other than the default for any simple field (new fields included)."""
    default = getattr(Settings(), name)
    if isinstance(default, bool):
        candidates: list[object] = [not default]
    elif isinstance(default, int):
        candidates = [default + 1, default - 1]
    elif isinstance(default, float):
        candidates = [default / 2 + 0.125, default + 1.5]
    elif isinstance(default, Path):
        candidates = [Path("/elsewhere") / name]
    else:
        candidates = [f"{default}x", "default", "local", "alt_name"]
    for candidate in candidates:
        try:
            value = getattr(Settings(**{name: candidate}), name)  # type: ignore[arg-type]
        except ValueError:
            continue
        if value != default:
            return candidate
    raise AssertionError(f"no non-default value found for {name}: extend non_default()")


SPECIAL: dict[str, object] = {
    "topics": Topics(transactions="tx", predictions="pred", dead_letters="dlq", partitions=8),
    "schema_registry_url": "http://registry:8081",
    "schema_registry_secret": SecretStr("user:pw"),
    "warehouse_password": SecretStr("s3cret"),
    "warehouse_dsn": "http://clickhouse:8123",
    "control_signing_keys": {"k1": SecretStr("hmac key"), "k0": SecretStr("older")},
    "control_signing_key_id": "k1",
    "processing_guarantee": "exactly_once",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "PLAIN",
    "kafka_sasl_password": SecretStr("sasl pw"),
    "online_model": "forest",
}


def test_every_field_round_trips_with_a_non_default_value() -> None:
    values = {
        name: SPECIAL[name] if name in SPECIAL else non_default(name)
        for name in Settings.model_fields
    }
    original = Settings(**values)  # type: ignore[arg-type]
    defaults = Settings()
    same = [n for n in Settings.model_fields if getattr(original, n) == getattr(defaults, n)]
    assert same == []
    assert round_trip(original) == original


def test_only_stream_app_variables_are_produced() -> None:
    env = settings_env(Settings())
    assert env and all(name.startswith("STREAM_APP_") for name in env)
    assert all(isinstance(value, str) for value in env.values())
    assert "STREAM_APP_SCHEMA_REGISTRY_URL" not in env  # None is left out, not "None"


@settings(deadline=None, max_examples=50)
@given(
    bootstrap=text,
    worker_id=text,
    database=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True),
    cooldown=st.floats(0.0, 1e6),
    batch_size=st.integers(1, 100_000),
    password=st.none() | text.map(SecretStr),
    topic=names,
    partitions=st.integers(1, 64),
    profile=st.sampled_from(["default", "local"]),
)
def test_round_trip_of_arbitrary_values(
    bootstrap: str,
    worker_id: str,
    database: str,
    cooldown: float,
    batch_size: int,
    password: SecretStr | None,
    topic: str,
    partitions: int,
    profile: Literal["default", "local"],
) -> None:
    original = Settings(
        bootstrap_servers=bootstrap,
        worker_id=worker_id,
        warehouse_database=database,
        alert_cooldown_s=cooldown,
        batch_size=batch_size,
        warehouse_password=password,
        topics=Topics(transactions=topic, partitions=partitions),
        kafka_profile=profile,
    )
    assert round_trip(original) == original
