"""Create the project's topics explicitly, and check at start that they are as expected.

The local broker would auto-create a missing topic badly (wrong partition count, no compaction),
so nothing is auto-created: clients set ``allow.auto.create.topics=false`` and every process
checks the topics it needs before it starts (:func:`check_topics`).
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from stream_app.catalogue import CATALOGUE, STORED, USED_BY_WORKER
from stream_app.errors import BrokerError
from stream_app.kafka.probe import connect
from stream_app.settings import Settings


def wanted_topics(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """Every topic of the catalogue: name → (partitions, topic config)."""
    topics = settings.topics
    return {spec.name(topics): (spec.partitions(topics), spec.config) for spec in CATALOGUE}


def sink_topics(settings: Settings) -> tuple[str, ...]:
    """The topics the warehouse sink consumes."""
    return tuple(spec.name(settings.topics) for spec in STORED)


def worker_topics(settings: Settings) -> tuple[str, ...]:
    """The topics a scoring worker reads or writes."""
    return tuple(spec.name(settings.topics) for spec in USED_BY_WORKER)


#: how long an admin request, and by default the wait for a broker, may take
ADMIN_TIMEOUT_S = 30.0


def check_topics(
    settings: Settings, needed: tuple[str, ...], broker_wait_s: float | None = ADMIN_TIMEOUT_S
) -> None:
    """Refuse to start unless every ``needed`` topic exists as :func:`wanted_topics` says.

    Checks the partition count and the cleanup policy (absent means Kafka's default, ``delete``).
    A broker that does not answer is waited for ``broker_wait_s`` (None: for ever, as the
    long-running processes do, so that a supervisor's restart during an outage does not become
    a crash loop).
    """
    admin, cluster = connect(settings, broker_wait_s)
    metadata = cluster.topics
    wanted = wanted_topics(settings)
    problems = []
    present = []
    for name in needed:
        partitions = wanted[name][0]
        topic = metadata.get(name)
        if topic is None or topic.error is not None:
            problems.append(f"{name}: missing")
        elif len(topic.partitions) != partitions:
            problems.append(f"{name}: {len(topic.partitions)} partitions, expected {partitions}")
        else:
            present.append(name)
    for name, policy in _cleanup_policies(admin, present, ADMIN_TIMEOUT_S).items():
        expected = wanted[name][1].get("cleanup.policy", "delete")
        if policy != expected:
            problems.append(f"{name}: cleanup.policy={policy}, expected {expected}")
    if problems:
        raise BrokerError(
            f"topics on {settings.bootstrap_servers} are not as this process needs them: "
            + "; ".join(problems)
            + " (create missing ones with `stream-app topics`; fix or recreate the others)"
        )


def _cleanup_policies(admin: AdminClient, names: list[str], timeout_s: float) -> dict[str, str]:
    if not names:
        return {}
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    policies = {}
    for resource, future in admin.describe_configs(resources, request_timeout=timeout_s).items():
        try:
            entries = future.result(timeout=timeout_s)
        except KafkaException as exc:
            raise BrokerError(f"cannot read the config of topic {resource.name}: {exc}") from exc
        entry = entries.get("cleanup.policy")
        policies[resource.name] = entry.value if entry is not None else "delete"
    return policies


def ensure_topics(settings: Settings, timeout_s: float = ADMIN_TIMEOUT_S) -> list[str]:
    """Create missing topics; return the names of those created."""
    admin, cluster = connect(settings, timeout_s)
    existing = set(cluster.topics)
    wanted = wanted_topics(settings)
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
