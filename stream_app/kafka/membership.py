"""Whether a consumer is a member of its group, asked at most once per interval.

``Consumer.memberid()`` is no attribute read: librdkafka hands the question to its group thread
and waits for the answer (``rd_kafka_memberid`` → ``rd_kafka_op_req2``). Asked once per loop turn,
it put a thread round trip (two wake-ups, and on a busy machine a wait for the other thread to
be scheduled) into every small batch. And it waits as long as that thread is busy: behind a
synchronous commit in flight when the broker went away, it held the scoring thread 18 s into a
stop, until the stop's watchdog ended the worker (exit 75). So it is asked like the other calls
that can block past their time (:mod:`stream_app.kafka.blocking`): on a daemon thread, waited
for :data:`ANSWER_S` at most, and not asked again while an earlier question is unanswered.
"""

from __future__ import annotations

import time
from concurrent.futures import Future

from confluent_kafka import Consumer

from stream_app.kafka.blocking import Abandoned, on_daemon_thread, wait_bounded

#: how long the caller waits for ``memberid()`` (it answers in microseconds when the group
#: thread is free)
ANSWER_S = 0.5


class Membership:
    """Asks ``memberid()`` at most every ``every_s`` seconds (monotonic ``now``)."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self._asked_at = float("-inf")
        self._unanswered: Future[str] | None = None

    def confirmed(self, consumer: Consumer, now: float) -> bool:
        """True if asked now and ``consumer`` is a member; False if not, or not asked (too soon).

        >>> class Member:
        ...     asked = 0
        ...     def memberid(self):
        ...         self.asked += 1
        ...         return "rdkafka-1"
        >>> member, membership = Member(), Membership(every_s=1.0)
        >>> [membership.confirmed(member, now) for now in (10.0, 10.5, 11.0)], member.asked
        ([True, False, True], 2)
        """
        if now - self._asked_at < self.every_s:
            return False
        self._asked_at = now
        if self._unanswered is not None and not self._unanswered.done():
            return False  # the group thread is still busy: not confirmed, and not asked again
        asked = on_daemon_thread(consumer.memberid, "memberid")
        try:
            return bool(wait_bounded(asked, "memberid", time.monotonic() + ANSWER_S))
        except Abandoned:
            self._unanswered = asked
            return False
