"""What a failed offset commit means for a group member: membership lost, or try again later.

A commit refused with ``UNKNOWN_MEMBER_ID``, ``ILLEGAL_GENERATION``, ``REBALANCE_IN_PROGRESS``
or ``FENCED_INSTANCE_ID`` (or librdkafka's ``_ASSIGNMENT_LOST``) means the group has moved on
without this member: its uncommitted work is dropped and the partitions' next owner replays it
from the last committed offsets (Kafka's at-least-once). librdkafka rejoins on its own.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

LOST_MEMBERSHIP = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)


def commit_error(exc: KafkaException) -> KafkaError | None:
    """The client's error behind a failed commit, or None if the exception carries none."""
    error = exc.args[0] if exc.args else None
    return error if isinstance(error, KafkaError) else None


def membership_lost(error: KafkaError) -> bool:
    """True when a commit failed because this member no longer belongs to the group.

    >>> membership_lost(KafkaError(KafkaError.UNKNOWN_MEMBER_ID))
    True
    >>> membership_lost(KafkaError(KafkaError._MSG_TIMED_OUT))
    False
    """
    return error.code() in LOST_MEMBERSHIP
