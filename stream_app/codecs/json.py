"""JSON events: one UTF-8 JSON object per record, decoded and validated by msgspec."""

from __future__ import annotations

import msgspec

from stream_app.codecs.base import TransactionCodec
from stream_app.errors import CodecError
from stream_app.events import Transaction


class JsonCodec(TransactionCodec):
    """JSON objects with the fields of :class:`Transaction`; extra fields are ignored.

    >>> codec = JsonCodec()
    >>> raw = b'{"event_id":"e1","card_id":"c1","merchant_id":"m","merchant_category":"fuel",'
    >>> raw += b'"amount":3.5,"currency":"EUR","channel":"pos","card_country":"FR",'
    >>> raw += b'"merchant_country":"FR","event_time":1700000000000,"new_field":1}'
    >>> codec.decode(raw).amount
    3.5
    >>> codec.decode(b'{"event_id":1}')
    Traceback (most recent call last):
    ...
    stream_app.errors.CodecError: invalid_field: Expected `str`, got `int` - at `$.event_id`
    """

    def __init__(self) -> None:
        self._decoder = msgspec.json.Decoder(Transaction)
        self._encoder = msgspec.json.Encoder()

    def encode(self, event: Transaction) -> bytes:
        return self._encoder.encode(event)

    def decode(self, value: bytes) -> Transaction:
        try:
            return self._decoder.decode(value)
        except msgspec.ValidationError as exc:
            message = str(exc)
            reason = (
                "missing_field"
                if message.startswith("Object missing required")
                else ("invalid_field")
            )
            raise CodecError(reason, message) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise CodecError("malformed_json", str(exc)) from None

    def accepts(self, value: bytes) -> bool:
        return value[:1] in (b"{", b"[", b" ", b"\n", b"\t", b"\r")
