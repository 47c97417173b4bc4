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

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
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
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    transactions: str = "transactions"
    """input events, keyed by card id"""
    predictions: str = "predictions"
    """one prediction per scored event"""
    dead_letters: str = "dead-letters"
    """input records that could not be scored, with the reason"""
    alerts: str = "alerts"
    """alerts with their rule and reasons"""
    card_state: str = "card-state"
    """per-card state changelog (compacted), one partition per input partition"""
    control: str = "model-control"
    """model commands to every worker (one partition, compacted)"""
    control_status: str = "control-status"
    """workers' acknowledgements and heartbeats (one partition)"""
    model_versions: str = "model-versions"
    """registered model versions (one partition, compacted)"""
    labels: str = "labels"
    """delayed ground truth (alert feedback, chargebacks), keyed by card id"""
    drift_events: str = "drift-events"
    """the drift monitors' detections (one partition)"""
    retrain_runs: str = "retrain-runs"
    """every run of the retraining job and its gate's decision (one partition)"""
    quality_estimates: str = "quality-estimates"
    """`stream-app estimate`'s label-free quality estimates per version and window (one
    partition)"""
    scored_features: str = "scored-features"
    """the feature vectors workers scored, for the online learner (with `online_features`)"""
    online_predictions: str = "online-predictions"
    """the online learner's shadow scores, keyed by card id"""
    partitions: int = Field(default=4, ge=1)
    """partitions of the keyed topics `stream-app topics` creates"""
    replication_factor: int = Field(default=1, ge=1)
    """replication factor of the topics `stream-app topics` creates"""


#: what a scoring worker promises about its outputs (docs/guarantees.md)
ProcessingGuarantee = Literal["at_least_once", "exactly_once"]


class Settings(BaseSettings):
    """Everything a worker, the sink or the CLI needs to know, validated once at start.

    Every field has a docstring: ``docs/settings.md`` is generated from them
    (:mod:`stream_app.settings_doc`, checked by ``tests/unit/test_settings_doc.py``).
    """

    model_config = SettingsConfigDict(
        env_prefix="STREAM_APP_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    bootstrap_servers: str = "127.0.0.1:9092"
    """Kafka bootstrap servers"""
    topics: Topics = Topics()
    """topic names (`topics.*` below)"""
    schema_registry_url: str | None = None
    """Confluent Schema Registry; `schemas/registry.json` when unset"""
    schema_registry_secret: SecretStr | None = None
    """Schema Registry credentials (`user:password`), never logged"""
    schemas_dir: Path = Field(default_factory=lambda: default_schemas_dir())
    """Avro schemas and the file registry: `schemas/` of the source tree, or the installed copy"""
    schema_registry_dir: Path = Path(".stream_app/schemas")
    """without a Schema Registry URL: where schema ids registered at run time (a topic renamed, a
    new schema version) are kept; `schemas_dir` is only read"""

    warehouse_dsn: str = Field(  # a DSN without its scheme silently meant localhost:8123
        default="chdb://.stream_app/warehouse",
        pattern=r"^(chdb://[^?#\s]+|https?://[^/?#\s]+([/?#]\S*)?)$",
    )
    """`chdb://` and a chDB directory (relative to the working directory), or `http://host:8123`
    for a ClickHouse server"""
    warehouse_database: str = Field(default="stream_app", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    """database of the tables"""
    warehouse_password: SecretStr | None = None
    """ClickHouse server password, never logged"""

    batch_size: int = Field(default=5000, ge=1, le=100_000)
    """worker batch: at most this many records; what is queued is taken at once"""
    batch_max_wait_ms: int = Field(default=50, ge=1)
    """an idle worker waits at most this long for the first record of a batch"""
    batch_linger_ms: int = Field(default=2, ge=0, le=1000)
    """a batch short of `batch_size` waits at most this long for more records: each batch has a
    fixed cost, so fewer, larger batches leave the CPU to the broker and the sink (0: none)"""
    checkpoint_interval_ms: int = Field(default=1000, ge=0)
    """how often a checkpoint is cut (state changelog, then offset commit)"""
    checkpoint_chunk_cards: int = Field(default=256, ge=1)
    """the most cards whose state one loop turn writes to the changelog while a checkpoint is
    written; a turn that scores a batch writes at most two per event of it, so that small batches
    are held up little"""
    processing_guarantee: ProcessingGuarantee = "at_least_once"
    """`exactly_once`: each checkpoint is one Kafka transaction of outputs, card state and input
    offsets ([guarantees.md](guarantees.md)); `worker_id` then names the transactional producer"""
    transaction_interval_ms: int = Field(default=50, ge=1)
    """`exactly_once`: how often a transaction is committed (outputs become visible then)"""
    transaction_timeout_ms: int = Field(default=10_000, ge=1000)
    """`exactly_once`: the broker aborts a transaction left open this long (a dead worker's)"""
    max_message_bytes: int = Field(default=64 * 1024, ge=256)
    """larger input records are dead-lettered as `oversized`"""
    # dead letters and poison pills (docs/dead-letters.md)
    max_key_bytes: int = Field(default=1024, ge=16)
    """input keys longer than this are dead-lettered as `oversized_key`"""
    dead_letter_max_bytes: int = Field(default=128 * 1024, ge=2048, le=1_000_000)
    """a whole dead letter fits in this (below the topic's `max.message.bytes`, 1 MB by default)"""
    poison_max_attempts: int = Field(default=3, ge=1)
    """a record whose processing raised this many times in a row is dead-lettered as
    `unexpected_error`"""
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    """the worker's name in acknowledgements, heartbeats and predictions; default `<host>-<pid>`"""
    worker_group: str = "stream-app-workers"
    """consumer group of the scoring workers"""
    worker_web_port: int = Field(default=6066, ge=0, le=65535)
    """a worker's `/health` and `/metrics` (on `sql_host`); 0: a free port (`web_port_file`)"""
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    """worker heartbeat on the status topic"""
    alert_rules: Path | None = None
    """alert rules file ([alerts.md](alerts.md)); unset: the rules shipped with the package"""
    alert_cooldown_s: float = Field(default=600.0, ge=0)
    """per-card alert cool-down, in event time"""

    model_dir: Path = Path(".stream_app/models")
    """model registry directory"""

    # logs (docs/operations.md)
    log_json: bool = False
    """every process logs one JSON object per line (time, level, logger, thread, message,
    exception) instead of text; `--log-json` does the same for one command"""

    # health (worker and sink /health, docs/operations.md)
    health_stall_s: float = Field(default=30.0, ge=2.0)
    """no progress for this long while work waits, or no group membership, is unhealthy
    ([operations.md](operations.md)); at least 2 s, as the membership is asked once a second"""
    health_broker_timeout_s: float = Field(default=2.0, gt=0)
    """how long `/health` waits for a broker's metadata answer before calling it unreachable"""
    broker_wait_s: float = Field(default=10.0, gt=0)
    """how long a command that reads the workers' statuses (`status`, `models list`, `promote`,
    the retrainer's promotions) waits for a broker to answer before it says it cannot reach one;
    the worker, the sink and the other long-running processes wait for ever"""
    rules_read_timeout_s: float = Field(default=5.0, gt=0)
    """a rules file not read within this is refused; the previous rules stay"""
    model_check_timeout_s: float = Field(default=60.0, gt=0)
    """a model not loaded and scored by the child process within this is refused"""

    # signed control commands (docs/security.md)
    control_signing_keys: dict[str, SecretStr] = {}
    """HMAC-SHA256 keys by key id, never logged: workers accept commands signed with any of them"""
    control_signing_key_id: str | None = None
    """the id of the key the CLI and the promotion path sign with; unset: they send unsigned"""
    require_signed_commands: bool = False
    """workers refuse unsigned, wrongly signed, unknown-key and replayed commands
    ([security.md](security.md)); off: every command is applied as before"""
    control_command_max_age_s: float = Field(default=300.0, gt=0)
    """a live command issued further than this from the worker's clock is refused as replayed"""

    sink_group: str = "stream-app-sink"
    """consumer group of the warehouse sink"""
    sink_batch_rows: int = Field(default=10_000, ge=1)
    """the sink flushes when this many rows are buffered ..."""
    sink_flush_interval_ms: int = Field(default=400, ge=10)
    """... or when its oldest buffered record is this old: with the fetch's wait (a fifth of
    it) and the insert, what a row takes to become queryable"""
    sink_nice: int = Field(default=10, ge=0, le=19)
    """added to the sink process's nice value at start (all its threads inherit it): on a machine
    shared with a worker, scoring gets the CPU first"""
    sql_host: str = "127.0.0.1"
    """where the sink (and a worker) serve HTTP"""
    sql_port: int = Field(default=8124, ge=0, le=65535)
    """the sink's `/health`, `/metrics` and (chDB) read-only SQL endpoint; 0: a free port"""
    # the sink's read-only SQL endpoint (docs/sql-endpoint.md): limits the client cannot lift
    sql_token: SecretStr | None = None
    """when set, `POST /query` needs `Authorization: Bearer <token>` (`stream-app sql` sends it)"""
    sql_max_concurrent: int = Field(default=2, ge=1)
    """queries run at once, each on its own read-only session ..."""
    sql_max_waiting: int = Field(default=8, ge=0)
    """... and queries waiting for one; beyond both: 503 at once"""
    sql_max_query_bytes: int = Field(default=1_000_000, ge=1024)
    """longest query text (a larger body: 413; the engine's `max_query_size`)"""
    sql_max_execution_s: float = Field(default=30.0, gt=0)
    """a query running longer is stopped (`max_execution_time`)"""
    sql_max_memory_mb: int = Field(default=1024, ge=16)
    """memory one query may take (`max_memory_usage`)"""
    sql_max_rows_to_read: int = Field(default=10_000_000_000, ge=1)
    """rows one query may read (`max_rows_to_read`)"""
    sql_max_result_rows: int = Field(default=1_000_000, ge=1)
    """rows one answer may hold (`max_result_rows`, beyond: an error, not a truncated answer)"""
    sql_max_result_mb: int = Field(default=100, ge=1)
    """bytes one answer of the endpoint may hold, formatted (chDB 4.4 does not enforce the
    engine's `max_result_bytes`)"""
    web_port_file: Path | None = None
    """where the sink or a worker writes the port its web server listens on once bound; with
    port 0 the system picks a free one: how the demo, the benchmark and the tests find it"""

    kafka_profile: Literal["default", "local"] = "local"
    """`local` lowers group timeouts and fetch waits and turns re-bootstrapping off, for the local
    broker; `default` keeps librdkafka's"""

    # how every Kafka client connects (docs/kafka-security.md)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """`SASL_SSL` for a cluster with users and TLS; `PLAINTEXT` for the local broker"""
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    """SASL mechanism (with a `SASL_*` protocol)"""
    kafka_sasl_username: str | None = None
    """SASL user (with a `SASL_*` protocol)"""
    kafka_sasl_password: SecretStr | None = None
    """SASL password, never logged"""
    kafka_ssl_ca_location: Path | None = None
    """PEM file of the CA that signed the brokers' certificates (with `SSL`/`SASL_SSL`); none:
    the system's trust store"""

    # local broker (`stream-app broker`, demo, bench, tests): Apache Kafka's jars from Maven
    broker_jars_dir: Path | None = None
    """where Maven puts the local broker's jars; none: `~/.cache/stream_app/kafka-<version>`
    ([local-broker.md](local-broker.md))"""
    broker_heap_mb: int = Field(default=512, ge=128)
    """the local broker's JVM heap (`-Xms` and `-Xmx`), MB"""

    # event time and plausibility (docs/event-contract.md)
    retention_days: int = Field(default=365, ge=2, le=20_000)  # DateTime ends in 2106
    """`events`, `predictions` and `alerts` keep a row this many days after its `event_time` (TTL);
    `dead_letters` and `control_events` after the time they were written"""
    event_time_future_skew_s: float = Field(default=300.0, ge=0)
    """how far an event may be dated after its record's broker timestamp (clock skew); later:
    dead-lettered ([event-contract.md](event-contract.md))"""
    event_time_lateness_days: float = Field(default=30.0, gt=0)
    """how far before its record's broker timestamp an event may be dated (offline terminals, late
    batches); at most `retention_days - 1`"""
    max_amount: float = Field(default=1_000_000.0, gt=0)
    """larger amounts (in any currency) are dead-lettered"""

    # live model quality (docs/model-quality.md)
    quality_top_k: int = Field(default=100, ge=1)
    """k of the daily alert precision P@k and card precision CP@k (the `quality_at_k` view)"""
    estimate_reference_hours: float = Field(default=24.0, gt=0)
    """`stream-app estimate` calibrates each version on its chargeback-labelled predictions of
    this many hours of event time from its first prediction, and estimates the windows after"""
    estimate_min_reference_frauds: int = Field(default=20, ge=1)
    """... and skips a version whose reference holds fewer frauds"""

    # drift monitors (docs/monitors.md)
    drift_monitoring: bool = True
    """the worker watches the scores and features of each input partition and model version
    with the monitors of `monitors/` and sends every detection to `drift-events`; a model
    version without a training reference is scored unmonitored"""
    drift_update_rows: int = Field(default=2000, ge=1)
    """... and holds the scored rows back until this many wait (or a checkpoint is cut, or the
    model changes), then updates the monitors in one pass: their fixed cost per pass is paid
    once for several small batches; 1 updates them with every batch"""
    drift_score_warmup_s: float = Field(default=86_400.0, ge=0)
    """a partition whose card state started empty (not restored from a checkpoint) feeds its
    score monitor only the events at least this many seconds of event time after the first one
    the monitors saw: until the per-card windows (24 hours) fill, the velocity features and so
    the scores run higher than on a warm state, a trend the monitor would read as drift; the
    feature monitors are not held back; 0: from the first event"""
    error_monitor_state: Path = Path(".stream_app/error-monitor.json")
    """`stream-app monitor-errors` keeps its monitors (ADWIN, HDDM_A per model version) and
    how far it read the stored chargebacks here"""

    # retraining (docs/retraining.md)
    retrain_window_hours: float = Field(default=168.0, gt=0)
    """`stream-app retrain` reads the events of this many hours of event time up to the latest
    one (their labels say which are fraud)"""
    retrain_holdout_fraction: float = Field(default=0.3, gt=0, lt=1)
    """the most recent share of the labelled events (by event time) is held out: candidate and
    champion are compared on it"""
    retrain_min_frauds: int = Field(default=200, ge=2)
    """the gate refuses with fewer labelled frauds in the held-out slice"""
    retrain_auc_margin: float = Field(default=0.01, ge=0, lt=1)
    """the candidate's ROC AUC must exceed the champion's by more than this ..."""
    retrain_alpha: float = Field(default=0.05, gt=0, lt=1)
    """... with DeLong's one-sided p-value below this ..."""
    retrain_precision_tolerance: float = Field(default=0.02, ge=0, le=1)
    """... and its P@k (k: `quality_top_k`) at most this below the champion's"""
    retrain_num_trees: int = Field(default=200, ge=1)
    """boosting rounds of a candidate (one thread)"""
    retrain_nice: int = Field(default=10, ge=0, le=19)
    """added to `stream-app retrain`'s nice value: scoring gets the CPU first"""
    retrain_idle_priority: bool = True
    """run `stream-app retrain` in Linux's SCHED_IDLE class (below every nice value): it gets
    only the CPU the other processes leave; where nothing is left, its runs time out"""
    retrain_ack_timeout_s: float = Field(default=30.0, gt=0)
    """how long the job waits for every live worker to apply the challenger"""

    # the retrainer service: policy, shadow, promotion, watch (docs/retraining.md#the-retrainer)
    retrainer_group: str = "stream-app-retrainer"
    """the group whose offsets on `drift-events` say which detections `stream-app retrainer` has
    decided on"""
    retrainer_signals: str = "score,feature"
    """comma-separated signals of `drift_events` that may trigger a run (`score`, `feature`)"""
    retrainer_detectors: str = ""
    """comma-separated detectors that may trigger a run; empty: every detector"""
    retrainer_cooldown_hours: float = Field(default=24.0, ge=0)
    """no run for a detection dated (event time) less than this after the last run's window"""
    retrainer_min_new_frauds: int = Field(default=200, ge=0)
    """no run until this many labelled frauds are dated after the last run's window"""
    retrainer_run_timeout_s: float = Field(default=1800.0, gt=0)
    """a training run (a child process) still going after this is stopped and recorded failed"""
    retrainer_stored_timeout_s: float = Field(default=120.0, gt=0)
    """how long a detection may take to reach `drift_events` (from the warehouse's first answer)
    before the run is recorded failed"""
    retrainer_warehouse_retry_s: float = Field(default=1.0, gt=0)
    """a warehouse query that fails (the sink down) is asked again after this, the wait doubled
    at each failure ..."""
    retrainer_warehouse_retry_max_s: float = Field(default=60.0, gt=0)
    """... up to this; the retrainer waits as long as it takes, not ready meanwhile"""
    retrainer_web_port: int = Field(default=6071, ge=0, le=65535)
    """the retrainer's `/health`, `/healthz`, `/readyz` and `/metrics` (on `sql_host`); 0: a free
    port (`web_port_file`)"""
    retrain_shadow_events: int = Field(default=20_000, ge=1)
    """a challenger is compared with the champion after this many predictions scored it"""
    retrain_shadow_min_frauds: int = Field(default=50, ge=2)
    """labelled frauds among those predictions the shadow gate (and the watch) needs to judge"""
    retrain_shadow_timeout_s: float = Field(default=3600.0, gt=0)
    """the shadow period (and the watch) gives up waiting for predictions and labels after this"""
    retrain_watch_events: int = Field(default=20_000, ge=1)
    """after a promotion, predictions of the new champion (the previous one in shadow) watched"""
    retrain_rollback_margin: float = Field(default=0.02, ge=0, lt=1)
    """the new champion is rolled back if its realised ROC AUC is this far below the previous"""
    # the online learner (docs/online-learner.md)
    online_features: bool = False
    """the worker records the feature vectors of each scored batch on `scored-features`, one
    record per input partition, for `stream-app learner`"""
    online_model: Literal["logistic", "hoeffding", "forest"] = "logistic"
    """the learner's River classifier (`stream-app bench online` compares them); its shadow
    scores carry the model version `online-<model>`"""
    online_threshold: float = Field(default=0.5, gt=0, lt=1)
    """the learner's shadow decision: decline at or above this probability"""
    online_state_dir: Path = Path(".stream_app/online")
    """the learner's local checkpoint (model, waiting vectors and labels, input offsets)"""
    online_buffer_events: int = Field(default=200_000, ge=1)
    """scored vectors (and early labels) kept waiting for their label; the oldest go first"""
    online_checkpoint_interval_s: float = Field(default=5.0, gt=0)
    """how often the learner saves its checkpoint (its input offsets live in it)"""
    online_web_port: int = Field(default=6070, ge=0, le=65535)
    """the learner's `/health`, `/healthz`, `/readyz` and `/metrics` (on `sql_host`); 0: a free
    port (`web_port_file`)"""

    @model_validator(mode="after")
    def _signing_key_known(self) -> Settings:
        key_id = self.control_signing_key_id
        if key_id is not None and key_id not in self.control_signing_keys:
            raise ValueError(f"control_signing_key_id {key_id!r} is not in control_signing_keys")
        return self

    @model_validator(mode="after")
    def _dead_letters_fit(self) -> Settings:
        if self.dead_letter_max_bytes < 2 * self.max_key_bytes + 2048:
            raise ValueError("dead_letter_max_bytes must leave room for the key twice + 2 KiB")
        return self

    @model_validator(mode="after")
    def _sasl_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and (
            not self.kafka_sasl_username or self.kafka_sasl_password is None
        ):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "kafka_sasl_username and kafka_sasl_password"
            )
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
            if not Path(config_file).is_file():  # a typo would silently run on the defaults
                raise FileNotFoundError(f"{CONFIG_FILE_ENV}={config_file}: no such file")
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


def invalid_settings(error: ValidationError) -> str:
    """What is wrong with the settings, a line each, naming the environment variable (values
    are not repeated: one may be a secret).

    >>> try:
    ...     Settings(health_stall_s=0.5, topics={"partitions": 0})  # fields in the order declared
    ... except ValidationError as exc:
    ...     print(invalid_settings(exc))
    invalid settings (environment, or the STREAM_APP_CONFIG file):
      topics.partitions (STREAM_APP_TOPICS__PARTITIONS): Input should be greater than or equal to 1
      health_stall_s (STREAM_APP_HEALTH_STALL_S): Input should be greater than or equal to 2
    """
    lines = [f"invalid settings (environment, or the {CONFIG_FILE_ENV} file):"]
    for problem in error.errors():
        path = [str(part) for part in problem["loc"]]
        variable = Settings.model_config["env_prefix"] + "__".join(path).upper()
        where = f"{'.'.join(path)} ({variable})" if path else "settings"
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)
