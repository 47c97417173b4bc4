"""What the stages read of a consumed record: protocols that ``confluent_kafka.Message`` fits.

They live with the Kafka layer so that the worker and the sink share them without importing
each other.
"""

from __future__ import annotations

from typing import Protocol


class SourceRecord(Protocol):
    """What a dead letter reads of the record it replaces."""

    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


class InputRecord(SourceRecord, Protocol):
    """What the scoring pipeline and the warehouse sink read of a consumed record."""

    def timestamp(self) -> tuple[int, int]: ...
