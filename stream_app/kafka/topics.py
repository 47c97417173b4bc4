"""Create the project's topics explicitly (the local broker would auto-create them badly)."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException

# NewTopic is exported by the C extension, which its stubs do not list
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stream_app.errors import BrokerError
from stream_app.kafka.config import admin_config
from stream_app.settings import Settings


def wanted_topics(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """Every topic of the project: name → (partitions, topic config)."""
    topics = settings.topics
    keyed = (topics.transactions, topics.predictions, topics.dead_letters, topics.alerts)
    wanted: dict[str, tuple[int, dict[str, str]]] = {n: (topics.partitions, {}) for n in keyed}
    # the changelog of per-card state: partition p holds the state of input partition p
    wanted[topics.card_state] = (topics.partitions, {"cleanup.policy": "compact"})
    wanted.update({name: (1, config) for name, config in topics.single_partition().items()})
    return wanted


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics; return the names of those created."""
    admin = AdminClient(admin_config(settings))
    wanted = wanted_topics(settings)
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise BrokerError(f"cannot reach {settings.bootstrap_servers}: {exc}") from exc
    missing = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=settings.topics.replication_factor,
            config=config,
        )
        for name, (partitions, config) in wanted.items()
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
    _wait_for_metadata(admin, {t.topic: wanted[t.topic][0] for t in missing}, timeout_s)
    return [t.topic for t in missing]


def _wait_for_metadata(admin: AdminClient, partitions: dict[str, int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=timeout_s).topics
        if all(n in metadata and len(metadata[n].partitions) == p for n, p in partitions.items()):
            return
        time.sleep(0.1)
    raise BrokerError(f"topics {sorted(partitions)} not visible after {timeout_s}s")
