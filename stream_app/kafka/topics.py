"""Create the project's topics explicitly (the local broker would auto-create them badly)."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stream_app.errors import BrokerError
from stream_app.kafka.config import admin_config
from stream_app.settings import Settings


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics (all with the configured partition count); return those created."""
    admin = AdminClient(admin_config(settings))
    topics = settings.topics
    wanted = [topics.transactions, *topics.outputs()]
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise BrokerError(f"cannot reach {settings.bootstrap_servers}: {exc}") from exc
    missing = [
        NewTopic(
            name, num_partitions=topics.partitions, replication_factor=topics.replication_factor
        )
        for name in wanted
        if name not in existing
    ]
    if not missing:
        return []
    for name, future in admin.create_topics(missing, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerError(f"cannot create topic {name}: {exc}") from exc
    _wait_for_metadata(admin, [t.topic for t in missing], topics.partitions, timeout_s)
    return [t.topic for t in missing]


def _wait_for_metadata(
    admin: AdminClient, names: list[str], partitions: int, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=timeout_s).topics
        if all(n in metadata and len(metadata[n].partitions) == partitions for n in names):
            return
        time.sleep(0.1)
    raise BrokerError(f"topics {names} not visible with {partitions} partitions after {timeout_s}s")
