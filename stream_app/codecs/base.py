"""The codec interface every transaction format implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from stream_app.events import Transaction


class TransactionCodec(ABC):
    """Turns a :class:`Transaction` into bytes and back; decode failures raise ``CodecError``."""

    @abstractmethod
    def encode(self, event: Transaction) -> bytes:
        """Serialise one event."""

    @abstractmethod
    def decode(self, value: bytes) -> Transaction:
        """Parse and validate one event, raising ``CodecError`` with a reason code."""

    @abstractmethod
    def accepts(self, value: bytes) -> bool:
        """Whether ``value`` looks like this codec's format (first bytes only, no parsing)."""
