"""Rules a decoded event must pass before it is scored or stored (docs/event-contract.md).

Event time is input, and input can lie: an event is accepted only inside a window around its
record's broker timestamp, never older than the warehouse keeps, with a plausible amount and the
key its partition (and so its card state) follows. A refusal is a :class:`CodecError` whose
reason becomes the dead letter's, like a decode failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stream_app.errors import CodecError
from stream_app.events import Transaction
from stream_app.settings import Settings
from stream_app.timing import now_ms

DAY_MS = 86_400_000
#: confluent-kafka's ``TIMESTAMP_NOT_AVAILABLE`` timestamp type
NO_TIMESTAMP = 0


@dataclass(frozen=True, slots=True)
class EventChecks:
    """The accepted event-time window, the retention floor and the plausibility rules.

    >>> checks = EventChecks(300_000, 30 * DAY_MS, 365 * DAY_MS, 1e6, clock=lambda: 10 * DAY_MS)
    >>> event = Transaction("e", "c1", "m", "fuel", 9.5, "EUR", "pos", "FR", "FR", 10 * DAY_MS)
    >>> checks.check(event, b"c1", (1, 10 * DAY_MS))
    >>> checks.check(event, b"c1", (1, 10 * DAY_MS - 600_000))
    Traceback (most recent call last):
    ...
    stream_app.errors.CodecError: event_time_in_future: event_time 864000000 is 600000 ms after \
the record's timestamp 863400000 (accepted: up to 300000 ms)
    """

    future_skew_ms: int
    lateness_ms: int
    retention_ms: int
    max_amount: float
    clock: Callable[[], int] = now_ms

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], int] = now_ms) -> EventChecks:
        return cls(
            future_skew_ms=int(settings.event_time_future_skew_s * 1000),
            lateness_ms=int(settings.event_time_lateness_days * DAY_MS),
            retention_ms=settings.retention_days * DAY_MS,
            max_amount=settings.max_amount,
            clock=clock,
        )

    def check(
        self,
        event: Transaction,
        key: bytes | None,
        timestamp: tuple[int, int],
        now: int | None = None,
    ) -> None:
        """Raise :class:`CodecError` with the reason of the first rule ``event`` breaks.

        ``timestamp`` is the record's ``(type, epoch ms)``; a timestamp later than the clock
        counts as the clock (a producer's clock running ahead must not open the window). ``now``:
        the clock read once for a whole batch (default: read here).
        """
        now = self.clock() if now is None else now
        kind, stamp = timestamp
        reference = now if kind == NO_TIMESTAMP else min(stamp, now)
        if event.event_time > reference + self.future_skew_ms:
            raise CodecError(
                "event_time_in_future",
                f"event_time {event.event_time} is {event.event_time - reference} ms after the "
                f"record's timestamp {reference} (accepted: up to {self.future_skew_ms} ms)",
            )
        # kept at least a day before the warehouse's TTL removes it, whatever the timestamp says
        oldest = max(reference - self.lateness_ms, now - self.retention_ms + DAY_MS)
        if event.event_time < oldest:
            raise CodecError(
                "event_time_too_old",
                f"event_time {event.event_time} is before {oldest} (the record's timestamp "
                f"{reference} minus the accepted lateness, or the retention)",
            )
        if event.amount > self.max_amount:
            raise CodecError(
                "amount_implausible", f"amount {event.amount!r} > maximum {self.max_amount!r}"
            )
        if key != event.card_id.encode():
            raise CodecError(
                "key_mismatch",
                f"record key {key[:64]!r} is not the event's card_id {event.card_id!r}"
                if key is not None
                else f"record has no key; expected the card_id {event.card_id!r}",
            )
