"""Whether a consumer is a member of its group, asked at most once per interval.

``Consumer.memberid()`` is no attribute read: librdkafka hands the question to its main thread
and waits for the answer (``rd_kafka_memberid`` → ``rd_kafka_op_req2``). Asked once per loop turn,
it put a thread round trip (two wake-ups, and on a busy machine a wait for the other thread to
be scheduled) into every small batch.
"""

from __future__ import annotations

from confluent_kafka import Consumer


class Membership:
    """Asks ``memberid()`` at most every ``every_s`` seconds (monotonic ``now``)."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self._asked_at = float("-inf")

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
        return bool(consumer.memberid())
