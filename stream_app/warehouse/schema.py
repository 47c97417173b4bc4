"""Warehouse tables, created idempotently by the sink.

Each ``*_raw`` table is a ReplacingMergeTree keyed by what identifies a record, so a replay after
a crash leaves at most a duplicate *part*, never a duplicate in what people query: the plain views
(``events``, ``predictions``, ``dead_letters``) read ``FINAL``. Sorting keys start with the card
(a card's history) and partitions are months of event time (per-version score distributions over
time prune by month).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """A raw table, its view name, and the columns the sink inserts (in order)."""

    view: str
    columns: tuple[tuple[str, str], ...]
    order_by: str
    partition_by: str
    version_column: str
    ttl_column: str | None

    @property
    def raw(self) -> str:
        return f"{self.view}_raw"

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def ddl(self, database: str, ttl_days: int) -> list[str]:
        """Create the table if missing, add columns newer than it, (re)create its view."""
        columns = ",\n  ".join(f"{name} {kind}" for name, kind in self.columns)
        ttl = (
            f"TTL toDateTime({self.ttl_column}) + INTERVAL {ttl_days} DAY"
            if self.ttl_column
            else ""
        )
        table = f"{database}.{self.raw}"
        return [
            f"CREATE TABLE IF NOT EXISTS {table} (\n  {columns}\n)"
            f"\nENGINE = ReplacingMergeTree({self.version_column})"
            f"\nPARTITION BY {self.partition_by}\nORDER BY ({self.order_by})\n{ttl}",
            *(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {n} {k}" for n, k in self.columns),
            # a changed retention applies to an existing table (new parts and merges; existing
            # parts are not rewritten at start)
            *(
                [f"ALTER TABLE {table} MODIFY {ttl} SETTINGS materialize_ttl_after_modify = 0"]
                if ttl
                else []
            ),
            # identifiers come from this module and the validated settings, never from users
            f"CREATE OR REPLACE VIEW {database}.{self.view} AS "  # noqa: S608
            f"SELECT * FROM {table} FINAL",
        ]


TIME = "DateTime64(3, 'UTC')"

EVENTS = Table(
    view="events",
    columns=(
        ("event_id", "String"),
        ("card_id", "String"),
        ("merchant_id", "LowCardinality(String)"),
        ("merchant_category", "LowCardinality(String)"),
        ("amount", "Float64"),
        ("currency", "LowCardinality(String)"),
        ("channel", "LowCardinality(String)"),
        ("card_country", "LowCardinality(String)"),
        ("merchant_country", "LowCardinality(String)"),
        ("event_time", TIME),
        ("create_time", TIME),
        ("source_partition", "UInt16"),
        ("source_offset", "UInt64"),
        ("ingested_time", TIME),
    ),
    order_by="card_id, event_time, event_id",
    partition_by="toYYYYMM(event_time)",
    version_column="ingested_time",
    ttl_column="event_time",
)

PREDICTIONS = Table(
    view="predictions",
    columns=(
        ("event_id", "String"),
        ("card_id", "String"),
        ("event_time", TIME),
        ("input_create_time", TIME),
        ("scored_time", TIME),
        ("model_version", "LowCardinality(String)"),
        ("score", "Float64"),
        ("decision", "LowCardinality(String)"),
        ("worker_id", "LowCardinality(String)"),
        ("source_partition", "UInt16"),
        ("source_offset", "UInt64"),
        ("ingested_time", TIME),
        ("challenger_version", "LowCardinality(Nullable(String))"),
        ("challenger_score", "Nullable(Float64)"),
    ),
    order_by="card_id, event_time, event_id",
    partition_by="toYYYYMM(event_time)",
    version_column="ingested_time",
    ttl_column="event_time",
)

DEAD_LETTERS = Table(
    view="dead_letters",
    columns=(
        ("source_topic", "LowCardinality(String)"),
        ("source_partition", "UInt16"),
        ("source_offset", "UInt64"),
        ("reason", "LowCardinality(String)"),
        ("detail", "String"),
        ("source_key", "Nullable(String)"),
        ("payload", "String"),
        ("worker_id", "LowCardinality(String)"),
        ("dead_lettered_time", TIME),
        ("ingested_time", TIME),
    ),
    order_by="source_topic, source_partition, source_offset",
    partition_by="toYYYYMM(dead_lettered_time)",
    version_column="ingested_time",
    ttl_column="dead_lettered_time",
)

ALERTS = Table(
    view="alerts",
    columns=(
        ("event_id", "String"),
        ("card_id", "String"),
        ("event_time", TIME),
        ("input_create_time", TIME),
        ("alerted_time", TIME),
        ("score", "Float64"),
        ("model_version", "LowCardinality(String)"),
        ("rules", "Array(LowCardinality(String))"),
        ("severity", "LowCardinality(String)"),
        ("amount", "Float64"),
        ("merchant_category", "LowCardinality(String)"),
        ("top_features", "Array(LowCardinality(String))"),
        ("top_contributions", "Array(Float64)"),
        ("worker_id", "LowCardinality(String)"),
        ("ingested_time", TIME),
    ),
    order_by="card_id, event_time, event_id",
    partition_by="toYYYYMM(event_time)",
    version_column="ingested_time",
    ttl_column="event_time",
)

CONTROL_EVENTS = Table(
    view="control_events",
    columns=(
        ("command_id", "String"),
        ("command", "LowCardinality(String)"),
        ("version", "Nullable(String)"),
        ("worker_id", "LowCardinality(String)"),
        ("status", "LowCardinality(String)"),
        ("reason", "String"),
        ("champion_version", "LowCardinality(String)"),
        ("challenger_version", "LowCardinality(Nullable(String))"),
        ("pause_ms", "Float64"),
        ("acknowledged_at", TIME),
        ("ingested_time", TIME),
    ),
    order_by="command_id, worker_id, status",
    partition_by="toYYYYMM(acknowledged_at)",
    version_column="ingested_time",
    ttl_column="acknowledged_at",
)

MODEL_VERSIONS = Table(
    view="model_versions",
    columns=(
        ("version", "String"),
        ("created_at", "String"),
        ("feature_set_version", "LowCardinality(String)"),
        ("feature_names", "Array(String)"),
        ("num_trees", "UInt32"),
        ("threshold", "Float64"),
        ("sha256", "String"),
        ("parent_version", "Nullable(String)"),
        ("training_json", "String"),
        ("evaluation_json", "String"),
        ("ingested_time", TIME),
    ),
    order_by="version",
    partition_by="tuple()",
    version_column="ingested_time",
    ttl_column=None,
)

TABLES = (EVENTS, PREDICTIONS, DEAD_LETTERS, ALERTS, CONTROL_EVENTS, MODEL_VERSIONS)


def create_statements(database: str, ttl_days: int = 365) -> list[str]:
    """Every statement that brings a warehouse to the current schema and retention (``ttl_days``
    after event time, the ``retention_days`` setting), idempotent."""
    statements = [f"CREATE DATABASE IF NOT EXISTS {database}"]
    for table in TABLES:
        statements.extend(table.ddl(database, ttl_days))
    return statements
