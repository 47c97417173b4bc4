"""``stream-app status``: the whole service on one screen (or as JSON for scripts).

Topics with the lag of the workers' and the sink's groups, the workers by their latest status
(models, last heartbeat), the registry's aliases, the last drift detection and retrain run from
the warehouse, and the sink's own health. Each part that cannot be read says why instead of
stopping the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from models.registry import FileModelStore
from stream_app.control.client import StatusReader, is_live, latest_statuses, live_within_s
from stream_app.errors import BrokerError, StreamAppError
from stream_app.kafka.config import consumer_config
from stream_app.kafka.lag import group_lag
from stream_app.kafka.probe import connect, say_waiting_once
from stream_app.kafka.topics import sink_topics
from stream_app.processes import get_json
from stream_app.settings import Settings
from stream_app.warehouse.sql import query_rows

Part = dict[str, Any]


def _guarded(read: Callable[[], Any]) -> Any:
    """What ``read`` returns, or ``{"error": why}`` if the broker or the warehouse refused."""
    try:
        return read()
    except (StreamAppError, KafkaException) as exc:
        return {"error": str(exc)}


def _lag(settings: Settings) -> Part:
    groups = {
        settings.worker_group: (settings.topics.transactions,),
        settings.sink_group: sink_topics(settings),
    }
    lag: Part = {}
    for group, topics in groups.items():
        consumer = Consumer(consumer_config(settings, group))
        try:
            lag[group] = group_lag(consumer, topics)
        finally:
            consumer.close()
    return lag


def _workers(settings: Settings) -> list[Part]:
    reader = StatusReader(settings)
    try:
        statuses = latest_statuses(reader)
    finally:
        reader.close()
    now_ms, within_s = time.time() * 1000, live_within_s(settings)
    return [
        {
            "worker_id": worker,
            "live": is_live(status, within_s, now_ms),
            "champion": status.champion_version,
            "challenger": status.challenger_version,
            "last_status": status.status,
            "seconds_since_last_status": round((now_ms - status.acknowledged_at) / 1000, 1),
        }
        for worker, status in sorted(statuses.items())
    ]


#: how long one question of the status screen to the warehouse may take (a sink that accepts
#: and never answers held the screen a minute per question)
QUERY_TIMEOUT_S = 5.0


def _last_row(settings: Settings, table: str) -> Part | None:
    """The latest row of ``table`` by its first time column; ``None`` if the table has none or
    does not exist."""
    database = settings.warehouse_database  # a checked identifier, like ``table``
    _, time_columns = query_rows(
        settings,
        "SELECT name FROM system.columns WHERE database = "  # noqa: S608  # no user input
        f"'{database}' AND table = '{table}' AND type LIKE 'DateTime%' ORDER BY position LIMIT 1",
        timeout_s=QUERY_TIMEOUT_S,
    )
    if not time_columns:
        return None
    latest = f"SELECT * FROM {database}.{table} ORDER BY {time_columns[0][0]} DESC LIMIT 1"  # noqa: S608
    columns, rows = query_rows(settings, latest, timeout_s=QUERY_TIMEOUT_S)
    return dict(zip(columns, rows[0], strict=True)) if rows else None


def _sink(settings: Settings) -> Part:
    health = get_json(f"{settings.sql_url}/health")
    ready = get_json(f"{settings.sql_url}/readyz")
    if health is None:
        return {"status": "not answering", "url": settings.sql_url}
    return {
        "status": health.get("status"),
        "ready": (ready or {}).get("status"),
        "reasons": health.get("reasons", []) + (ready or {}).get("reasons", []),
        "consumed": health.get("consumed"),
        "flushes": health.get("flushes"),
        "failed_inserts": health.get("failed_inserts"),
    }


def _broker_silent(settings: Settings) -> Part | None:
    """``{"error": why}`` when no broker answers within ``broker_wait_s`` (asked by a quiet
    admin client: the lag's and the workers' consumers would log every reconnect)."""
    try:
        connect(settings, settings.broker_wait_s, say_waiting_once())
    except BrokerError as exc:
        return {"error": str(exc)}
    return None


def collect_status(settings: Settings) -> Part:
    """Everything ``stream-app status`` shows, as plain data (what ``--json`` prints)."""
    silent = _broker_silent(settings)
    return {
        "lag": silent or _guarded(lambda: _lag(settings)),
        "workers": silent or _guarded(lambda: _workers(settings)),
        "aliases": FileModelStore(settings.model_dir).aliases(),
        "last_drift": _guarded(lambda: _last_row(settings, "drift_events")),
        "last_retrain": _guarded(lambda: _last_row(settings, "retrain_runs")),
        "sink": _sink(settings),
    }


def nothing_answered(found: Part) -> bool:
    """Whether neither the broker nor the sink answered (what ``stream-app status`` exits 1
    for: the screen is then only the registry's aliases)."""
    broker_parts = (found["lag"], found["workers"])
    broker_silent = all(isinstance(part, dict) and "error" in part for part in broker_parts)
    return broker_silent and found["sink"].get("status") == "not answering"


def _lag_table(lag: Part) -> Table | str:
    if "error" in lag:
        return f"lag unknown: {lag['error']}"
    table = Table("group", "topic", "partitions", "lag", title="lag (committed offsets)")
    for group, topics in lag.items():
        for topic, partitions in topics.items():
            table.add_row(group, topic, str(len(partitions)), f"{sum(partitions.values()):,}")
    return table


def _workers_table(workers: Any) -> Table | str:
    if isinstance(workers, dict):
        return f"workers unknown: {workers['error']}"
    table = Table("worker", "live", "champion", "challenger", "last status", "seconds ago",
                  title="workers (control-status topic)")  # fmt: skip
    for w in workers:
        table.add_row(w["worker_id"], "yes" if w["live"] else "no", w["champion"],
                      w["challenger"] or "-", w["last_status"],
                      str(w["seconds_since_last_status"]))  # fmt: skip
    return table


def _row(name: str, row: Any) -> str:
    if row is None:
        return f"{name}: none"
    if "error" in row and len(row) == 1:
        return f"{name}: unknown ({row['error']})"
    return f"{name}: " + ", ".join(f"{key}={value}" for key, value in row.items())


def render(status: Part, console: Console) -> None:
    """One screen: lag, workers, aliases, last drift and retrain, the sink."""
    aliases = ", ".join(f"{alias}={version}" for alias, version in status["aliases"].items())
    sink = status["sink"]
    sink_line = f"sink: {sink['status']}" + (
        f", {sink['ready']}, {sink['consumed']} consumed, {sink['flushes']} flushes, "
        f"{sink['failed_inserts']} failed inserts" if "ready" in sink else f" at {sink['url']}"
    )  # fmt: skip
    lines = [
        _lag_table(status["lag"]),
        _workers_table(status["workers"]),
        f"aliases: {aliases or 'none'}",
        _row("last drift", status["last_drift"]),
        _row("last retrain", status["last_retrain"]),
        sink_line + "".join(f"\n  {reason}" for reason in sink.get("reasons", [])),
    ]
    console.print(Panel(Group(*lines), title="stream-app status"))
