"""Retry what reads records while the Schema Registry does not answer: the records are not at
fault, so they are neither dead-lettered nor skipped. The reader waits, with a growing pause,
until the registry answers or it is told to stop; it notes no offset of what it could not read
meanwhile, so a stop leaves that to whoever reads the partition next (the worker's batches, the
online learner's and the retrainer's records)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from stream_app.errors import SchemaRegistryUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_PAUSE_S = 0.2
MAX_PAUSE_S = 5.0


def retry_while_unavailable(
    run: Callable[[], T], stopping: threading.Event, what: str = "the batch"
) -> T | None:
    """``run()``'s result, retried after each :class:`SchemaRegistryUnavailable`; ``None`` if
    ``stopping`` is set while waiting. ``what``: what ``run`` reads, for the log."""
    pause = FIRST_PAUSE_S
    while True:
        try:
            return run()
        except SchemaRegistryUnavailable as exc:
            log.warning("%s: retrying %s in %.1f s", exc, what, pause)
        if stopping.wait(pause):
            log.warning("stopping during a Schema Registry outage: %s is left unread", what)
            return None
        pause = min(pause * 2, MAX_PAUSE_S)
