"""Is the broker reachable, and will it let us in? Metadata requests with a deadline."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from stream_app.errors import BrokerError
from stream_app.kafka.config import admin_config
from stream_app.settings import Settings

#: errors no retry mends: wrong credentials or a certificate the client does not trust
_REFUSALS = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL})


def broker_unreachable(admin: AdminClient, timeout_s: float) -> str | None:
    """None when a broker answers a metadata request within ``timeout_s``, else why not.

    Blocks up to ``timeout_s``: call it off any event loop.
    """
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        return str(exc.args[0]) if exc.args else repr(exc)
    return None


def connect(settings: Settings, timeout_s: float) -> tuple[AdminClient, ClusterMetadata]:
    """An admin client and the cluster's metadata; :class:`BrokerError` at once if the cluster
    refuses our credentials or certificate (librdkafka would retry those for ever), or if no
    broker answers within ``timeout_s``."""
    refusals: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        if error.code() in _REFUSALS:
            refusals.append(error)

    config: dict[str, Any] = {**admin_config(settings), "error_cb": on_error}
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return admin, admin.list_topics(timeout=min(1.0, timeout_s))
        except KafkaException as exc:
            admin.poll(0.1)  # serves error_cb
            if refusals:
                raise BrokerError(
                    f"{settings.bootstrap_servers} refused this client "
                    f"({settings.kafka_security_protocol}): {refusals[0].str()}"
                ) from exc
            if time.monotonic() >= deadline:
                raise BrokerError(f"cannot reach {settings.bootstrap_servers}: {exc}") from exc
