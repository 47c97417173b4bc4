"""One typed settings object, read from the environment (``STREAM_APP_*``) and an optional file.

Defaults run the embedded setup: a local broker on loopback and chDB in ``.stream_app/``.
Nested values use ``__`` in the environment, e.g. ``STREAM_APP_TOPICS__PARTITIONS=8``.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "STREAM_APP_CONFIG"


def default_schemas_dir() -> Path:
    """``schemas/`` of the source tree, or the copy a wheel installs under ``<prefix>/share``."""
    source_tree = Path(__file__).resolve().parent.parent / "schemas"
    if source_tree.is_dir():
        return source_tree
    return Path(sys.prefix) / "share" / "stream_app" / "schemas"


class Topics(BaseModel):
    """Topic names and the partition count of the keyed input topic."""

    # extra="forbid" as in Settings: a typo (STREAM_APP_TOPICS__PARTITONS) must not pass silently
    model_config = ConfigDict(frozen=True, extra="forbid")

    transactions: str = "transactions"
    predictions: str = "predictions"
    dead_letters: str = "dead-letters"
    alerts: str = "alerts"
    card_state: str = "card-state"
    control: str = "model-control"
    control_status: str = "control-status"
    model_versions: str = "model-versions"
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)

    def outputs(self) -> tuple[str, ...]:
        """Topics the scoring workers write."""
        return (self.predictions, self.dead_letters, self.alerts, self.control_status)

    def single_partition(self) -> dict[str, dict[str, str]]:
        """Low-volume topics with one partition (total order), and their topic configs."""
        return {
            self.control: {"cleanup.policy": "compact"},
            self.control_status: {},
            self.model_versions: {"cleanup.policy": "compact"},
        }


class Settings(BaseSettings):
    """Everything a worker, the sink or the CLI needs to know, validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="STREAM_APP_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    bootstrap_servers: str = "127.0.0.1:9092"
    topics: Topics = Topics()
    schema_registry_url: str | None = None
    schema_registry_secret: SecretStr | None = None
    schemas_dir: Path = Field(default_factory=lambda: default_schemas_dir())
    # without a Schema Registry URL: schema ids registered at run time (a topic renamed, a new
    # schema version) are kept here; ``schemas_dir`` is only read
    schema_registry_dir: Path = Path(".stream_app/schemas")

    warehouse_dsn: str = "chdb://.stream_app/warehouse"  # relative to the working directory
    warehouse_database: str = Field(default="stream_app", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    warehouse_password: SecretStr | None = None

    batch_size: int = Field(default=5000, ge=1, le=100_000)
    batch_max_wait_ms: int = Field(default=50, ge=1)
    checkpoint_interval_ms: int = Field(default=1000, ge=0)  # how often a checkpoint is cut
    checkpoint_chunk_cards: int = Field(default=256, ge=1)  # changelog records per loop turn
    max_message_bytes: int = Field(default=64 * 1024, ge=256)
    # dead letters and poison pills (docs/dead-letters.md): input keys longer than max_key_bytes
    # are dead-lettered; a whole dead letter fits in dead_letter_max_bytes (below the topic's
    # max.message.bytes, 1 MB by default); a record whose processing raised poison_max_attempts
    # times in a row is dead-lettered as unexpected_error
    max_key_bytes: int = Field(default=1024, ge=16)
    dead_letter_max_bytes: int = Field(default=128 * 1024, ge=2048, le=1_000_000)
    poison_max_attempts: int = Field(default=3, ge=1)
    decision_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    worker_group: str = "stream-app-workers"
    worker_web_port: int = Field(default=6066, ge=0, le=65535)
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    alert_rules: Path | None = None  # None: the rules shipped with the package
    alert_cooldown_s: float = Field(default=600.0, ge=0)  # event time, per card

    model_dir: Path = Path(".stream_app/models")

    # health (worker and sink /health): no progress for this long while work waits, or no group
    # membership, is unhealthy; a broker that does not answer a metadata request in
    # health_broker_timeout_s is unreachable. Rules files and models are loaded under timeouts.
    health_stall_s: float = Field(default=30.0, gt=0)
    health_broker_timeout_s: float = Field(default=2.0, gt=0)
    rules_read_timeout_s: float = Field(default=5.0, gt=0)
    model_check_timeout_s: float = Field(default=60.0, gt=0)

    sink_group: str = "stream-app-sink"
    sink_batch_rows: int = Field(default=10_000, ge=1)
    sink_flush_interval_ms: int = Field(default=1000, ge=10)
    #: added to the sink process's nice value: beside a worker, scoring gets the CPU first
    sink_nice: int = Field(default=10, ge=0, le=19)
    sql_host: str = "127.0.0.1"
    sql_port: int = Field(default=8124, ge=0, le=65535)

    kafka_profile: Literal["default", "local"] = "local"

    # event time and plausibility (docs/event-contract.md): outside the window or above the
    # maximum amount, an event is dead-lettered; the warehouse keeps rows retention_days
    retention_days: int = Field(default=365, ge=2, le=20_000)  # TTL; DateTime ends in 2106
    event_time_future_skew_s: float = Field(default=300.0, ge=0)  # ahead of the broker time
    event_time_lateness_days: float = Field(default=30.0, gt=0)  # behind it; < retention_days
    max_amount: float = Field(default=1_000_000.0, gt=0)

    @model_validator(mode="after")
    def _dead_letters_fit(self) -> Settings:
        if self.dead_letter_max_bytes < 2 * self.max_key_bytes + 2048:
            raise ValueError("dead_letter_max_bytes must leave room for the key twice + 2 KiB")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Constructor arguments win over the environment, which wins over the TOML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @model_validator(mode="after")
    def _lateness_within_retention(self) -> Settings:
        """An accepted event must stay in the warehouse at least a day before its TTL expires."""
        if self.event_time_lateness_days > self.retention_days - 1:
            raise ValueError(
                f"event_time_lateness_days ({self.event_time_lateness_days}) must be at most "
                f"retention_days - 1 ({self.retention_days - 1})"
            )
        return self

    @property
    def sql_url(self) -> str:
        """Where the sink serves read-only SQL."""
        return f"http://{self.sql_host}:{self.sql_port}"

    @property
    def embedded_warehouse(self) -> bool:
        """True when the warehouse is chDB, whose data directory only one process may open."""
        return self.warehouse_dsn.startswith("chdb://")
