"""The worker's one producer: outputs sent in the background, failed deliveries settled.

Deliveries report errors only (no callback per message); a checkpoint asks whether everything
sent so far was acknowledged before it commits input offsets. An output that cannot be delivered
never takes the worker down (``docs/dead-letters.md``): after a transient error it is sent again;
one refused for good (too large, invalid, not authorised...) is handed to ``replace``, which
returns the dead letter that stands for it, or ``None`` — then it is logged and counted as lost.
Only a fatal producer error raises. Either way its input offsets move only once what stands for
it was acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from stream_app.errors import BrokerError
from stream_app.kafka.producer_calls import fatal_error, serve
from stream_app.scoring.records import DeliveryCounts, Headers, OutputRecord, Undelivered

log = logging.getLogger(__name__)

#: errors worth sending again, besides those librdkafka flags retriable (it flags none in
#: delivery reports): the broker or the network failed, not the record
TRANSIENT = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    }
)

Replace = Callable[[Undelivered], OutputRecord | None]


class Outputs:
    """Sends :class:`OutputRecord` s; ``producer`` is there for those that produce on their own
    (the model switch's acknowledgements)."""

    def __init__(self, producer_config: dict[str, Any], replace: Replace = lambda _: None) -> None:
        self.producer = Producer(
            {**producer_config, "on_delivery": self.on_delivery, "delivery.report.only.error": True}
        )
        self._replace = replace
        self._undelivered: list[Undelivered] = []
        self.counts = DeliveryCounts()

    def send(self, outputs: list[OutputRecord]) -> None:
        for out in outputs:
            self._produce(out.topic, out.key, out.value, out.headers, out.partition)

    def send_state(self, topic: str, records: Iterable[tuple[int, bytes, bytes | None]]) -> None:
        """Changelog records ``(partition, key, value)`` of a checkpoint's cut, to ``topic``:
        produced as they come, with no :class:`OutputRecord` each (a cut has a record per card
        changed, thousands per checkpoint)."""
        produce = self.producer.produce
        for partition, key, value in records:
            try:
                produce(topic, value, key, partition)
            except (BufferError, KafkaException):  # queue full, or refused: the slow path
                self._produce(topic, key, value, None, partition)

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int | None,
    ) -> None:
        produce = self.producer.produce
        while True:
            try:
                if partition is None:
                    produce(topic, value, key, headers=headers)
                else:
                    produce(topic, value, key, partition=partition, headers=headers)
                return
            except BufferError:  # local queue full: let deliveries drain
                serve(self.producer.poll, 0.05)
            except KafkaException as exc:  # refused before it left (too large, ...)
                error: KafkaError = exc.args[0]
                where = -1 if partition is None else partition
                self._undelivered.append(Undelivered(topic, where, key, value, error))
                return

    def outstanding(self) -> int:
        """Records sent and not acknowledged yet (failed deliveries settled first)."""
        serve(self.producer.poll, 0)
        self._settle()
        return len(self.producer)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until everything sent, and whatever stands for what failed, is acknowledged, for
        ``timeout_s`` at most (what is left then stops :meth:`check_acknowledged`)."""
        deadline = time.monotonic() + timeout_s
        while (
            not serve(self.producer.flush, max(0.0, deadline - time.monotonic()))
            and self._settle()
            and time.monotonic() < deadline
        ):
            pass

    def acknowledged(self) -> bool:
        """Whether every record sent was acknowledged or settled."""
        return not len(self.producer) and not self._undelivered

    def check_acknowledged(self) -> None:
        """Raise unless every record sent was acknowledged or settled: before input offsets may
        move."""
        if not self.acknowledged():
            raise BrokerError(
                f"outputs not acknowledged ({len(self.producer)} pending, {len(self._undelivered)} "
                "failed and not settled); input offsets were not committed"
            )

    def discard(self) -> None:
        """Forget the failed deliveries: their transaction was aborted (exactly-once mode)."""
        self._undelivered = []

    def on_delivery(self, error: KafkaError | None, message: Message | None) -> None:
        if error is None:
            return
        if message is None:  # librdkafka always names the record: counted, not dropped
            log.error("a delivery failed, record unknown: %s", error)
            self.counts.lost += 1
        else:
            partition = message.partition()
            self._undelivered.append(
                Undelivered(
                    message.topic() or "",
                    -1 if partition is None else partition,
                    message.key(),
                    message.value(),
                    error,
                )
            )

    def _settle(self) -> int:
        """Send again, replace or count what failed; how many records it sent."""
        undelivered, self._undelivered = self._undelivered, []
        sent = 0
        for failed in undelivered:
            error = failed.error
            if error.fatal():
                raise fatal_error(error)
            if error.retriable() or error.code() in TRANSIENT:
                log.warning("delivery to %s failed (%s): sending it again", failed.topic, error)
                partition = failed.partition if failed.partition >= 0 else None
                self._produce(failed.topic, failed.key, failed.value, None, partition)
                self.counts.retried += 1
                sent += 1
                continue
            replacement = self._replace(failed)
            if replacement is None:
                log.error(
                    "output to %s refused for good and lost (%d-byte key, %d-byte value): %s",
                    failed.topic,
                    len(failed.key or b""),
                    len(failed.value or b""),
                    error,
                )
                self.counts.lost += 1
                continue
            log.warning("output to %s refused (%s): dead-lettered", failed.topic, error)
            self.send([replacement])
            self.counts.replaced += 1
            sent += 1
        return sent
