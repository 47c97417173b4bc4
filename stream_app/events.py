"""The transaction event contract and the column batch that moves through the hot path."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

CHANNELS = ("pos", "ecom", "atm")
MAX_ID_LENGTH = 128
#: the control characters (Unicode category Cc) an id may not hold
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: the ``command`` of a worker's heartbeat on the status topic (the sink does not store them)
HEARTBEAT = "heartbeat"


class Transaction(msgspec.Struct, frozen=True):
    """One card transaction as producers send it. Unknown extra fields are ignored.

    ``event_time`` is event time in milliseconds since the Unix epoch (UTC).
    """

    event_id: str
    card_id: str
    merchant_id: str
    merchant_category: str
    amount: float
    currency: str
    channel: str
    card_country: str
    merchant_country: str
    event_time: int

    def __post_init__(self) -> None:
        """Reject values a model must never see; msgspec reports them as validation errors."""
        if not math.isfinite(self.amount) or self.amount <= 0:
            raise ValueError(f"amount must be a finite number > 0, got {self.amount!r}")
        if self.event_time <= 0:
            raise ValueError(
                f"event_time must be positive epoch milliseconds, got {self.event_time}"
            )
        for name in ("event_id", "card_id"):
            value = getattr(self, name)
            # no control character: a NUL-led card id would read as a worker's reserved state key
            if not value or len(value) > MAX_ID_LENGTH or _CONTROL.search(value):
                raise ValueError(
                    f"{name} must be 1..{MAX_ID_LENGTH} characters, no control character"
                )


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class TransactionBatch:
    """Valid transactions of one batch as columns, the unit between decode, features and predict."""

    event_id: list[str]
    card_id: list[str]
    merchant_id: list[str]
    merchant_category: list[str]
    currency: list[str]
    channel: list[str]
    card_country: list[str]
    merchant_country: list[str]
    amount: FloatArray
    event_time: IntArray

    def __len__(self) -> int:
        return len(self.event_id)

    @classmethod
    def from_transactions(cls, events: Sequence[Transaction]) -> TransactionBatch:
        """Turn decoded events into columns.

        >>> tx = Transaction("e1", "c1", "m1", "grocery", 12.5, "EUR", "pos", "FR", "FR", 1000)
        >>> batch = TransactionBatch.from_transactions([tx, tx])
        >>> len(batch), batch.amount.tolist()
        (2, [12.5, 12.5])
        """
        return cls(
            event_id=[e.event_id for e in events],
            card_id=[e.card_id for e in events],
            merchant_id=[e.merchant_id for e in events],
            merchant_category=[e.merchant_category for e in events],
            currency=[e.currency for e in events],
            channel=[e.channel for e in events],
            card_country=[e.card_country for e in events],
            merchant_country=[e.merchant_country for e in events],
            amount=np.fromiter((e.amount for e in events), dtype=np.float64, count=len(events)),
            event_time=np.fromiter(
                (e.event_time for e in events), dtype=np.int64, count=len(events)
            ),
        )
