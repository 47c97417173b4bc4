"""The records the worker's stages hand to its producer, and what becomes of those it cannot
deliver."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaError

Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True, slots=True)
class OutputRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None
    partition: int | None = None  # None: the producer's partitioner (by key) decides


@dataclass(frozen=True, slots=True)
class Undelivered:
    """An output the producer could not deliver: refused at ``produce()`` or in its delivery
    report (which carries no headers: librdkafka does not keep them for it)."""

    topic: str
    partition: int  # -1: not known (the partitioner had not chosen one)
    key: bytes | None
    value: bytes | None  # None: a tombstone (a changelog's)
    error: KafkaError


@dataclass(slots=True)
class DeliveryCounts:
    """What became of the outputs the producer could not deliver (read by health and metrics)."""

    retried: int = 0  # sent again after a transient error
    replaced: int = 0  # refused for good, replaced by a dead letter ``output_refused``
    lost: int = 0  # refused for good with no replacement: logged at ERROR
