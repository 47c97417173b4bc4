"""Encoding and decoding of records: JSON and Avro in the Confluent wire format."""

from stream_app.codecs.base import TransactionCodec
from stream_app.codecs.detect import TransactionDecoder

__all__ = ["TransactionCodec", "TransactionDecoder"]
