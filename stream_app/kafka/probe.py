"""Is the broker reachable? One metadata request, answered or not within a timeout (for health)."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient


def broker_unreachable(admin: AdminClient, timeout_s: float) -> str | None:
    """None when a broker answers a metadata request within ``timeout_s``, else why not.

    Blocks up to ``timeout_s``: call it off any event loop.
    """
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        return str(exc.args[0]) if exc.args else repr(exc)
    return None
