"""Commit consumed offsets synchronously, through a broker restart.

While the group coordinator is away (the broker restarting, a coordinator moving), the commit is
tried again, for up to ``retry_for_s``, or until the process is asked to stop (``stopping``): then
the offsets stay uncommitted and are read again, as after a crash, rather than holding a stop up
for as long as the outage lasts. Nothing can be delivered meanwhile anyway. A commit in flight
when the broker goes away waits for the broker's answer however long it is away
(:mod:`stream_app.kafka.blocking`): it runs on a thread of its own, and is given up on the same
way. A group refuses
a commit from a member it no longer counts (its session expired during the outage, or a rebalance
moved on without it). That is no failure of ours: the partitions' next owner, perhaps this
consumer once it rejoins, reads them again from the last committed offsets, as after a crash, and
the warehouse's views keep one row per event. Any other commit error is raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from stream_app.kafka.blocking import Abandoned, call_bounded, never, on_daemon_thread, wait_bounded

#: the group refused a commit because this member is no longer the partitions' owner
MEMBERSHIP_LOST = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)

#: the coordinator is not reachable or not ready yet: worth asking again
COORDINATOR_AWAY = frozenset(
    {
        KafkaError._WAIT_COORD,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }
)
RETRY_FOR_S = 120.0
#: set while this thread runs one of a consumer's rebalance callbacks (:func:`rebalancing`)
_callback = threading.local()
#: how long a consumer's close may take (it waits for a commit in flight) before it is left
CLOSE_TIMEOUT_S = 5.0

log = logging.getLogger(__name__)


@contextmanager
def rebalancing() -> Iterator[None]:
    """Around a rebalance callback's body: a commit it makes runs on this thread. librdkafka
    answers no commit from another thread while the callback runs (measured: a commit on a
    daemon thread from ``on_revoke`` was still unanswered after 15 s)."""
    _callback.active = True
    try:
        yield
    finally:
        _callback.active = False


def _commit_here_or_aside(
    consumer: Consumer, partitions: list[TopicPartition], deadline: float, stop: Callable[[], bool]
) -> None:
    def commit() -> None:
        consumer.commit(offsets=partitions, asynchronous=False)

    if getattr(_callback, "active", False):
        commit()
    else:
        wait_bounded(on_daemon_thread(commit, "commit"), "offset commit", deadline, stop)


def commit_offsets(
    consumer: Consumer,
    offsets: dict[tuple[str, int], int],
    retry_for_s: float = RETRY_FOR_S,
    stopping: Callable[[], bool] = never,
) -> bool:
    """Commit the next offsets to read per (topic, partition); False if the group refused them
    because this member lost the partitions, or if ``stopping`` said so while the coordinator
    was away (either way they will be read again)."""
    partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
    deadline = time.monotonic() + retry_for_s
    while True:
        try:
            _commit_here_or_aside(consumer, partitions, deadline, stopping)
            return True
        except Abandoned as exc:
            if time.monotonic() > deadline:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, str(exc))) from None
            log.warning("stopping with a commit unanswered (broker away?): offsets not "
                        "committed, to be read again")  # fmt: skip
            return False
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() in MEMBERSHIP_LOST:
                log.warning("commit refused, the partitions moved on without this member: %s", exc)
                return False
            if error.code() not in COORDINATOR_AWAY or time.monotonic() > deadline:
                raise
            if stopping():
                log.warning("stopping with the coordinator away: offsets not committed, to be "
                            "read again: %s", exc)  # fmt: skip
                return False
            log.warning("commit failed, trying again: %s", exc)
        time.sleep(0.5)


def close_consumer(consumer: Consumer, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Close ``consumer`` (leave its group), waiting ``timeout_s`` at most: with a commit of its
    left unanswered by a broker that went away, a close blocks for a minute."""
    try:
        call_bounded(consumer.close, "consumer close", timeout_s)
    except Abandoned:
        log.warning("consumer not closed within %.0fs (broker away?): left to the process's "
                    "exit; its group moves on after the session timeout", timeout_s)  # fmt: skip
