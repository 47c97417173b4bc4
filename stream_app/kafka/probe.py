"""Is the broker reachable, and will it let us in? Metadata requests with a deadline."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from stream_app.errors import BrokerError
from stream_app.kafka.config import admin_config
from stream_app.settings import Settings

log = logging.getLogger(__name__)

#: errors no retry mends: wrong credentials or a certificate the client does not trust
_REFUSALS = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL})
#: how often a process waiting for a broker says it still waits
WAITING_LOG_S = 30.0


def broker_unreachable(admin: AdminClient, timeout_s: float) -> str | None:
    """None when a broker answers a metadata request within ``timeout_s``, else why not.

    Blocks up to ``timeout_s``: call it off any event loop.
    """
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        return str(exc.args[0]) if exc.args else repr(exc)
    finally:
        admin.poll(0)  # logs what librdkafka queued meanwhile (a long-lived client's log lines)
    return None


def connect(
    settings: Settings, timeout_s: float | None, on_wait: Callable[[str], None] | None = None
) -> tuple[AdminClient, ClusterMetadata]:
    """An admin client and the cluster's metadata; :class:`BrokerError` at once if the cluster
    refuses our credentials or certificate (librdkafka would retry those for ever), or if no
    broker answers within ``timeout_s``. ``timeout_s`` None waits for ever, saying so in the log
    at the first failure and every ``WAITING_LOG_S``: a long-running process started during an
    outage waits for its broker as it does for one that goes away while it runs. ``on_wait`` is
    told what it waits for at every failed attempt (the process's start-up ``/health``)."""
    refusals: list[KafkaError] = []
    transport: list[str] = []  # the last connection failure's words ("Connection refused")

    def on_error(error: KafkaError) -> None:
        if error.code() in _REFUSALS:
            refusals.append(error)
        elif error.code() == KafkaError._TRANSPORT:
            transport[:] = [error.str()]

    # each metadata request reconnects at once: librdkafka would log ~20 refused connections a
    # second while it waits (its level 3); what it waits for is logged here instead
    config: dict[str, Any] = {**admin_config(settings), "error_cb": on_error, "log_level": 2}
    admin = AdminClient(config)
    started = time.monotonic()
    next_log = started
    while True:
        try:
            return admin, admin.list_topics(timeout=min(1.0, timeout_s or 1.0))
        except KafkaException as exc:
            admin.poll(0.1)  # serves error_cb
            if refusals:
                raise BrokerError(
                    f"{settings.bootstrap_servers} refused this client "
                    f"({settings.kafka_security_protocol}): {refusals[0].str()}"
                ) from exc
            why = transport[0] if transport else _words(exc)
            waited_s = time.monotonic() - started
            if timeout_s is not None and waited_s >= timeout_s:
                raise BrokerError(
                    f"cannot reach {settings.bootstrap_servers} within {timeout_s:g} s: {why}"
                ) from exc
            waiting = f"waiting for a broker at {settings.bootstrap_servers}"
            if timeout_s is not None:
                waiting += f" (up to {timeout_s:g} s)"
            waiting += f": {why}"
            if on_wait is not None:
                on_wait(waiting)
            if timeout_s is None and time.monotonic() >= next_log:
                log.warning("%s (%.0f s so far)", waiting, waited_s)
                next_log += WAITING_LOG_S


def _words(exc: KafkaException) -> str:
    """The client's own words for a failure, without the ``KafkaError{code=…}`` wrapping."""
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)


def say_waiting_once() -> Callable[[str], None]:
    """An ``on_wait`` for a one-shot command: the first wait said on standard error, once, so a
    person knows what the command waits for while a script's standard output stays the answer."""
    said: list[str] = []

    def say(waiting: str) -> None:
        if not said:
            said.append(waiting)
            print(waiting, file=sys.stderr, flush=True)

    return say


def wait_for_broker(settings: Settings, on_wait: Callable[[str], None]) -> None:
    """Return once a broker answers, however long that takes (see :func:`connect`); a refusal
    of our credentials or certificate is a :class:`BrokerError` at once."""
    connect(settings, None, on_wait)
