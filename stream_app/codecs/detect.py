"""Decode transactions of any accepted format, choosing the codec from the first byte."""

from __future__ import annotations

from collections.abc import Sequence

from stream_app.codecs.base import TransactionCodec
from stream_app.errors import CodecError, SchemaRegistryUnavailable
from stream_app.events import Transaction


class TransactionDecoder:
    """Tries each codec whose format the value looks like; size is checked before parsing."""

    def __init__(self, codecs: Sequence[TransactionCodec], max_bytes: int) -> None:
        self._codecs = tuple(codecs)
        self._max_bytes = max_bytes

    def decode(self, value: bytes | None) -> Transaction:
        if not value:
            raise CodecError("empty_value", "record has no value")
        if len(value) > self._max_bytes:
            raise CodecError("oversized", f"{len(value)} bytes > limit {self._max_bytes}")
        for codec in self._codecs:
            if codec.accepts(value):
                try:
                    return codec.decode(value)
                except (CodecError, SchemaRegistryUnavailable):
                    raise  # a dead letter, or not the record's fault: retried
                except Exception as exc:  # a codec bug must not stop the worker: dead-letter it
                    raise CodecError("decode_error", f"{type(exc).__name__}: {exc}") from None
        raise CodecError("unknown_format", f"first byte 0x{value[0]:02x} is neither JSON nor Avro")
