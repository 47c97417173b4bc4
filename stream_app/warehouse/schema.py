"""Warehouse tables, created idempotently by the sink.

Each ``*_raw`` table is a ReplacingMergeTree keyed by what identifies a record, so a replay after
a crash leaves at most a duplicate *part*, never a duplicate in what people query: the plain views
(``events``, ``predictions``, ``dead_letters``) read ``FINAL``. Sorting keys start with the card
(a card's history) and partitions are months of event time (per-version score distributions over
time prune by month). ClickHouse refuses an INSERT block that spans more than
``max_partitions_per_insert_block`` (100) partitions, so rows are grouped by month into blocks
that stay under it (:meth:`Table.insert_blocks`). Rows the engine refuses are parked in
``rejected_rows`` with the engine's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stream_app.warehouse.quality import quality_views

#: ClickHouse's default ``max_partitions_per_insert_block``: one INSERT may touch this many
MAX_PARTITIONS_PER_INSERT = 100


def month_of(value: Any) -> tuple[int, int] | None:
    """The UTC month of a time column's value (epoch milliseconds or a datetime), as ClickHouse's
    ``toYYYYMM`` sees it; ``None`` beyond what Python dates hold (the engine clamps those).

    >>> month_of(1_767_225_600_000), month_of(datetime(2026, 2, 3, tzinfo=UTC))
    ((2026, 1), (2026, 2))
    >>> month_of(2**62) is None
    True
    """
    if isinstance(value, datetime):
        return value.year, value.month
    try:
        moment = datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return None
    return moment.year, moment.month


def in_one_month(times: Sequence[Any]) -> bool:
    """Whether every time falls in one month, told by the earliest and the latest alone (False
    when they cannot be compared, e.g. a missing one: the caller looks row by row).

    >>> in_one_month([1_767_225_600_000, 1_767_312_000_000]), in_one_month([0, 2**62])
    (True, False)
    >>> in_one_month([1_767_225_600_000, None])
    False
    """
    if not times:
        return True
    try:
        first, last = min(times), max(times)
    except TypeError:
        return False
    month = month_of(first)
    return month is not None and month == month_of(last)


@dataclass(frozen=True)
class Table:
    """A raw table, its view name, and the columns the sink inserts (in order)."""

    view: str
    columns: tuple[tuple[str, str], ...]
    order_by: str
    time_column: str | None
    """partitions are months of this time column and rows expire after it; None: one partition,
    kept for ever"""
    version_column: str = "ingested_time"
    """the ReplacingMergeTree version: of the rows a replay folds together, the latest counts"""
    view_select: str = "SELECT * FROM {raw} FINAL"
    """what the view answers, ``{raw}`` standing for the raw table"""

    @property
    def raw(self) -> str:
        return f"{self.view}_raw"

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def column_types(self) -> list[str]:
        return [kind for _, kind in self.columns]

    @property
    def partition_by(self) -> str:
        return f"toYYYYMM({self.time_column})" if self.time_column else "tuple()"

    def insert_blocks(
        self, rows: Sequence[Any], max_partitions: int = MAX_PARTITIONS_PER_INSERT
    ) -> list[Sequence[Any]]:
        """``rows`` as INSERT blocks of at most ``max_partitions`` partitions each (usually one).

        >>> five_months = [[m * 31 * 86_400_000] * len(EVENTS.columns) for m in range(5)]
        >>> [len(block) for block in EVENTS.insert_blocks(five_months, max_partitions=2)]
        [2, 2, 1]
        """
        if self.time_column is None:
            return [rows]
        at = self.column_names.index(self.time_column)
        if in_one_month([row[at] for row in rows]):  # the usual batch: no month per row
            return [rows]
        by_month: dict[tuple[int, int] | None, list[Any]] = {}
        for row in rows:
            by_month.setdefault(month_of(row[at]), []).append(row)
        if len(by_month) <= max_partitions:
            return [rows]
        months = list(by_month.values())
        return [
            [row for month in months[i : i + max_partitions] for row in month]
            for i in range(0, len(months), max_partitions)
        ]

    def ddl(self, database: str, ttl_days: int) -> list[str]:
        """Create the table if missing, add columns newer than it, (re)create its view."""
        columns = ",\n  ".join(f"{name} {kind}" for name, kind in self.columns)
        ttl = (
            f"TTL toDateTime({self.time_column}) + INTERVAL {ttl_days} DAY"
            if self.time_column
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
            f"CREATE OR REPLACE VIEW {database}.{self.view} AS "
            + self.view_select.format(raw=table),
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
    time_column="event_time",
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
    time_column="event_time",
)

#: the online learner's shadow scores: its own version, so keyed by version as well as event
ONLINE_PREDICTIONS = Table(
    view="online_predictions",
    columns=PREDICTIONS.columns,
    order_by="card_id, event_time, event_id, model_version",
    time_column="event_time",
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
    time_column="dead_lettered_time",
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
    time_column="event_time",
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
    time_column="acknowledged_at",
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
    time_column=None,
)

LABELS = Table(
    view="labels",
    columns=(
        ("event_id", "String"),
        ("card_id", "String"),
        ("is_fraud", "Bool"),
        ("label_source", "LowCardinality(String)"),
        ("label_time", TIME),
        ("event_time", TIME),
        ("source_partition", "UInt16"),
        ("source_offset", "UInt64"),
        ("ingested_time", TIME),
    ),
    # every record is a row (a replay folds onto its own row); the view keeps the first per event
    # and source in log order: labels are keyed by card id, so an event's labels share a partition
    order_by="card_id, event_id, label_source, source_partition, source_offset",
    time_column="event_time",
    view_select="""SELECT event_id, label_source,
  argMin(card_id, (source_partition, source_offset)) AS card_id,
  argMin(is_fraud, (source_partition, source_offset)) AS is_fraud,
  argMin(label_time, (source_partition, source_offset)) AS label_time,
  argMin(event_time, (source_partition, source_offset)) AS event_time,
  argMin(ingested_time, (source_partition, source_offset)) AS ingested_time
FROM {raw} GROUP BY event_id, label_source""",
)

DRIFT_EVENTS = Table(
    view="drift_events",
    columns=(
        ("event_time", TIME),
        ("detected_time", TIME),
        ("signal", "LowCardinality(String)"),
        ("feature", "LowCardinality(String)"),
        ("detector", "LowCardinality(String)"),
        ("statistic", "Float64"),
        ("threshold", "Float64"),
        ("model_version", "LowCardinality(String)"),
        ("input_partition", "UInt16"),
        ("input_offset", "UInt64"),
        ("worker_id", "LowCardinality(String)"),
        ("ingested_time", TIME),
    ),
    # a replay after a crash detects again at the same triggering event: it folds onto its row
    order_by="input_partition, model_version, detector, feature, input_offset",
    time_column="event_time",
)

RETRAIN_RUNS = Table(
    view="retrain_runs",
    columns=(
        ("run_id", "String"),
        ("started_time", TIME),
        ("trigger", "LowCardinality(String)"),
        ("drift_event", "String"),
        ("window_start", TIME),
        ("holdout_start", TIME),
        ("window_end", TIME),
        ("train_rows", "UInt64"),
        ("train_frauds", "UInt64"),
        ("holdout_rows", "UInt64"),
        ("holdout_frauds", "UInt64"),
        ("champion_version", "LowCardinality(String)"),
        ("champion_roc_auc", "Float64"),
        ("champion_pr_auc", "Float64"),
        ("champion_precision_at_k", "Float64"),
        ("candidate_roc_auc", "Float64"),
        ("candidate_pr_auc", "Float64"),
        ("candidate_precision_at_k", "Float64"),
        ("k", "UInt32"),
        ("statistic", "Float64"),
        ("p_value", "Float64"),
        ("decision", "LowCardinality(String)"),
        ("reason", "String"),
        ("candidate_version", "Nullable(String)"),
        ("wall_seconds", "Float64"),
        ("issued_by", "String"),
        ("parent_run_id", "String"),
        ("ingested_time", TIME),
    ),
    order_by="run_id",
    time_column="started_time",
)

#: ``stream-app estimate``'s estimates; a later run's row for the same window replaces the earlier
QUALITY_ESTIMATES = Table(
    view="quality_estimates",
    columns=(
        ("run_id", "String"),
        ("estimated_time", TIME),
        ("model_version", "LowCardinality(String)"),
        ("window", "LowCardinality(String)"),
        ("window_start", TIME),
        ("predictions", "UInt64"),
        ("reference_start", TIME),
        ("reference_end", TIME),
        ("reference_rows", "UInt64"),
        ("reference_frauds", "UInt64"),
        *(
            (f"{metric}{part}", "Float64")
            for metric in ("precision", "recall", "f1", "roc_auc")
            for part in ("", "_low", "_high")
        ),
        ("ingested_time", TIME),
    ),
    order_by="model_version, window, window_start",
    time_column="window_start",
)

REJECTED_ROWS = Table(
    view="rejected_rows",
    columns=(
        ("table_name", "LowCardinality(String)"),
        ("error", "String"),
        ("row_json", "String"),  # the refused row, its values in the table's column order
        ("rejected_time", TIME),
    ),
    order_by="table_name, row_json",  # a row parked again after a replay folds away
    time_column="rejected_time",
    version_column="rejected_time",
)

TABLES = (
    EVENTS,
    PREDICTIONS,
    ONLINE_PREDICTIONS,
    DEAD_LETTERS,
    ALERTS,
    CONTROL_EVENTS,
    MODEL_VERSIONS,
    LABELS,
    DRIFT_EVENTS,
    RETRAIN_RUNS,
    QUALITY_ESTIMATES,
    REJECTED_ROWS,
)
BY_VIEW = {table.view: table for table in TABLES}


def create_statements(database: str, ttl_days: int = 365, top_k: int = 100) -> list[str]:
    """Every statement that brings a warehouse to the current schema and retention (``ttl_days``
    after event time, the ``retention_days`` setting), idempotent; the quality views last, with
    ``top_k`` for P@k and CP@k (the ``quality_top_k`` setting)."""
    statements = [f"CREATE DATABASE IF NOT EXISTS {database}"]
    for table in TABLES:
        statements.extend(table.ddl(database, ttl_days))
    return statements + quality_views(database, top_k)
