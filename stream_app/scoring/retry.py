"""Retry a batch while the Schema Registry does not answer: its records are not at fault, so
they are neither dead-lettered nor skipped. The loop waits, with a growing pause, until the
registry answers or the worker is told to stop; offsets of the batch are not noted meanwhile,
so a stop leaves it to whoever reads the partition next."""

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


def retry_while_unavailable(run: Callable[[], T], stopping: threading.Event) -> T | None:
    """``run()``'s result, retried after each :class:`SchemaRegistryUnavailable`; ``None`` if
    ``stopping`` is set while waiting."""
    pause = FIRST_PAUSE_S
    while True:
        try:
            return run()
        except SchemaRegistryUnavailable as exc:
            log.warning("%s: retrying the batch in %.1f s", exc, pause)
        if stopping.wait(pause):
            log.warning("stopping during a Schema Registry outage: the batch is left unscored")
            return None
        pause = min(pause * 2, MAX_PAUSE_S)
