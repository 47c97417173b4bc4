"""confluent-kafka client configurations, derived from the settings in one place.

The ``local`` profile lowers group timeouts and the empty-fetch wait so that the local broker
(Tansu) assigns partitions in seconds and answers empty fetches quickly; ``default`` keeps
librdkafka's production defaults.
"""

from __future__ import annotations

from typing import Any

from stream_app.settings import Settings

_LOCAL_PROFILE: dict[str, Any] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "fetch.wait.max.ms": 10,
    "topic.metadata.refresh.interval.ms": 5000,
}


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """A producer that waits for every in-sync replica and batches for throughput."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "acks": "all",
        "enable.idempotence": False,
        "linger.ms": 5,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 1_000_000,
        "compression.type": "none",
        "message.max.bytes": max(1_000_000, 2 * settings.max_message_bytes),
        # a misspelt or missing topic is an error, never a topic created with broker defaults
        "allow.auto.create.topics": False,
    }
    config.update(overrides)
    return config


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A consumer that never commits on its own: offsets move only after outputs are safe."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
        "allow.auto.create.topics": False,
    }
    if settings.kafka_profile == "local":
        config.update(_LOCAL_PROFILE)
    config.update(overrides)
    return config


def scoring_consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A consumer for a latency-bound reader that takes everything queued at once (the worker).

    On the local broker it fetches again only once what it holds has been taken, checking every
    10 ms: about one fetch per batch instead of one per batch the producers send. Tansu lists
    every batch a partition holds on each fetch, so each fetch saved is worth more the longer a
    run lasts (README, "What bounds"). Real Kafka keeps librdkafka's prefetching defaults.

    >>> scoring_consumer_config(Settings(kafka_profile="local"), "g")["fetch.queue.backoff.ms"]
    10
    >>> "queued.min.messages" in scoring_consumer_config(Settings(kafka_profile="default"), "g")
    False
    """
    pacing: dict[str, Any] = {}
    if settings.kafka_profile == "local":
        pacing = {"queued.min.messages": 1, "fetch.queue.backoff.ms": 10}
    return consumer_config(settings, group_id, **{**pacing, **overrides})


def bulk_consumer_config(settings: Settings, group_id: str) -> dict[str, Any]:
    """A consumer for a reader that flushes in bulk anyway (the warehouse sink).

    Each fetch waits for a megabyte or half a second instead of coming back with whatever
    arrived: far fewer fetch requests for the same records. On the local broker this matters
    beyond the client: Tansu's in-memory log scans a partition's batches on every fetch, so a
    reader that fetches as fast as records arrive costs the broker more the longer it runs.
    """
    return consumer_config(
        settings, group_id, **{"fetch.wait.max.ms": 500, "fetch.min.bytes": 1_000_000}
    )


def admin_config(settings: Settings) -> dict[str, Any]:
    return {"bootstrap.servers": settings.bootstrap_servers}
