"""confluent-kafka client configurations, derived from the settings in one place.

The ``local`` profile lowers the group session timeout so that a consumer that dies (a killed
worker in a test, a Ctrl-C in a demo) hands its partitions over in seconds rather than 45 s, and
refreshes metadata often so that new partitions are seen soon, and turns re-bootstrapping off
(:data:`_LOCAL_CONNECTION`); ``default`` keeps librdkafka's production defaults.
"""

from __future__ import annotations

import logging
from typing import Any

from stream_app.settings import Settings

#: where every client's librdkafka log lines go: through Python's logging, so that they share the
#: process's format (one JSON object per line under ``--log-json``) instead of librdkafka's own
#: ``%3|<epoch>|FAIL|…`` lines on stderr. librdkafka queues them; a client's ``poll``,
#: ``consume`` or ``flush`` logs them (an admin client's: ``poll``).
LIBRDKAFKA_LOG = logging.getLogger("stream_app.kafka.librdkafka")

# The classic group protocol: Kafka 4's `group.protocol=consumer` (KIP-848) made the rebalance tests
# no faster on the local broker (partitions moving to a new worker 8.4 s against 5.6 s, a killed
# worker replaced 14.4 against 11.9, two workers under load 18.1 against 18.2; one run each, same
# session, 2026-12-01), and the broker already starts the first rebalance at once
# (group.initial.rebalance.delay.ms=0).
_LOCAL_PROFILE: dict[str, Any] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "topic.metadata.refresh.interval.ms": 5000,
}


#: The local profile's clients do not re-bootstrap (KIP-899, librdkafka 2.10+). With the only
#: broker away, librdkafka's re-bootstrap dropped and re-created the bootstrap broker every 50 ms,
#: each time logging a refused connection: 1,460 librdkafka lines in the worker's log, 500 in the
#: sink's in a 20-s outage (test_broker_restart.py), against 30 and 12 without it, the recovery
#: the same. One node at one address leaves nothing to re-bootstrap to; the default profile keeps
#: it for clusters whose brokers can all move.
_LOCAL_CONNECTION: dict[str, Any] = {"metadata.recovery.strategy": "none"}


def connection_config(settings: Settings) -> dict[str, Any]:
    """Where the cluster is and how to authenticate to it: shared by every client.

    >>> from pydantic import SecretStr
    >>> secure = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="scorer",
    ...                   kafka_sasl_password=SecretStr("s3cret"))
    >>> sorted(connection_config(secure))  # doctest: +NORMALIZE_WHITESPACE
    ['bootstrap.servers', 'logger', 'metadata.recovery.strategy', 'sasl.mechanism',
     'sasl.password', 'sasl.username', 'security.protocol']
    """
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
        "logger": LIBRDKAFKA_LOG,
    }
    if settings.kafka_security_protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = password.get_secret_value() if password else ""
    if settings.kafka_security_protocol.endswith("SSL") and settings.kafka_ssl_ca_location:
        config["ssl.ca.location"] = str(settings.kafka_ssl_ca_location)
    if settings.kafka_profile == "local":
        config.update(_LOCAL_CONNECTION)
    return config


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """A producer that waits for every in-sync replica and batches for throughput.

    Idempotent: a retried send neither duplicates a record nor reorders it within its partition
    (without it, up to 1,000,000 requests in flight may land out of order after a retry — the
    order of a card's events and of its state changelog records matters here).
    """
    config: dict[str, Any] = {
        **connection_config(settings),
        "acks": "all",
        "enable.idempotence": True,
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


#: librdkafka's first backoff before it asks again after a retriable error. Its default (100 ms)
#: is what ``send_offsets_to_transaction`` waited whenever the transaction coordinator answered
#: ``AddOffsetsToTxn`` with ``CONCURRENT_TRANSACTIONS`` (the previous transaction's markers still
#: being written): librdkafka retries that request after ``retry.backoff.ms``, where it waits a
#: fixed 20 ms for ``AddPartitionsToTxn`` (its ``rdkafka_txnmgr.c``), as the Java producer does
#: since KAFKA-5477. 10 ms, growing to ``retry.backoff.max.ms`` (1 s) on repeated failures.
TRANSACTION_RETRY_BACKOFF_MS = 10


def transactional_config(settings: Settings) -> dict[str, Any]:
    """What makes a worker's producer transactional (exactly-once): its ``transactional.id`` is
    stable per worker instance, so that a restarted instance fences what its predecessor left
    open; a transaction left open longer than ``transaction_timeout_ms`` is aborted by the
    broker; a transactional call the coordinator asks to repeat is repeated after
    :data:`TRANSACTION_RETRY_BACKOFF_MS`, not 100 ms.

    >>> transactional_config(Settings(worker_id="w1"))["retry.backoff.ms"]
    10
    """
    return {
        "transactional.id": f"{settings.worker_group}-{settings.worker_id}",
        "transaction.timeout.ms": settings.transaction_timeout_ms,
        "retry.backoff.ms": TRANSACTION_RETRY_BACKOFF_MS,
    }


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A consumer that never commits on its own: offsets move only after outputs are safe; it
    reads committed records only (what an aborted transaction wrote stays invisible)."""
    config: dict[str, Any] = {
        **connection_config(settings),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "isolation.level": "read_committed",
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
        "allow.auto.create.topics": False,
    }
    if settings.kafka_profile == "local":
        config.update(_LOCAL_PROFILE)
    config.update(overrides)
    return config


#: how long a fetch of a range reader waits at the end of a partition (librdkafka's default: 500)
RANGE_READER_FETCH_WAIT_MS = 10


def range_reader_config(settings: Settings, group_id: str) -> dict[str, Any]:
    """A consumer that reads partitions one after the other up to the end each had
    (:func:`stream_app.kafka.drain.read_to_end`: the worker's changelog restore).

    The broker answers a connection's requests in order: with the default fetch wait, each
    partition's watermark request queued behind the fetch the previous partition had left waiting
    at its end, for 500 ms. Eight partitions of ten records took 4.05-4.08 s to read one after the
    other, 0.60-0.61 s with fetches that wait 10 ms. Such a consumer lets each partition go at its
    end, so it never polls an idle partition at that pace for long.
    """
    return consumer_config(settings, group_id, **{"fetch.wait.max.ms": RANGE_READER_FETCH_WAIT_MS})


def bulk_consumer_config(settings: Settings, group_id: str) -> dict[str, Any]:
    """A consumer for a reader that flushes in bulk anyway (the warehouse sink).

    Each fetch waits for a megabyte or a fifth of the sink's flush interval (at most half a
    second) instead of coming back with whatever arrived: far fewer fetch requests, and larger
    batches, for the same records, while a record still reaches the buffer early in the interval
    that bounds its visibility.
    """
    wait_ms = min(500, settings.sink_flush_interval_ms // 5)
    return consumer_config(
        settings, group_id, **{"fetch.wait.max.ms": wait_ms, "fetch.min.bytes": 1_000_000}
    )


def admin_config(settings: Settings) -> dict[str, Any]:
    return connection_config(settings)
