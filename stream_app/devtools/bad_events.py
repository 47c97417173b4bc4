"""A catalogue of malformed input records, each with the dead-letter reason it must produce.

A case makes the record's value, and its key (the card id, unless the key is what is wrong).

The demo mixes them into its stream; the tests check every one lands in the dead-letter topic.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from stream_app.events import Transaction


def card_key(event: Transaction) -> bytes:
    return event.card_id.encode()


@dataclass(frozen=True)
class BadCase:
    name: str
    reason: str
    make: Callable[[Transaction], bytes]
    key: Callable[[Transaction], bytes] = card_key


def _json_with(event: Transaction, **changes: object) -> bytes:
    document = msgspec.structs.asdict(event)
    document.update(changes)
    return msgspec.json.encode({k: v for k, v in document.items() if v is not _DROP})


_DROP = object()
YEAR_2100 = 4_102_444_800_000  # 2100-01-01T00:00:00Z


def _replace_amount(event: Transaction, literal: bytes) -> bytes:
    raw = msgspec.json.encode(event)
    start = raw.index(b'"amount":') + len(b'"amount":')
    end = raw.index(b",", start)
    return raw[:start] + literal + raw[end:]


CATALOGUE: tuple[BadCase, ...] = (
    BadCase("plain_text", "unknown_format", lambda e: b"card " + e.card_id.encode() + b" paid"),
    BadCase("truncated_json", "malformed_json", lambda e: msgspec.json.encode(e)[:40]),
    BadCase("invalid_utf8", "malformed_json", lambda e: b'{"event_id": "\xff\xfe"}'),
    BadCase("missing_amount", "missing_field", lambda e: _json_with(e, amount=_DROP)),
    BadCase("amount_as_string", "invalid_field", lambda e: _json_with(e, amount=str(e.amount))),
    BadCase("event_time_as_float", "invalid_field", lambda e: _json_with(e, event_time=1.5)),
    BadCase("negative_amount", "invalid_field", lambda e: _json_with(e, amount=-e.amount)),
    BadCase("zero_amount", "invalid_field", lambda e: _json_with(e, amount=0.0)),
    BadCase("nan_amount", "malformed_json", lambda e: _replace_amount(e, b"NaN")),
    BadCase("infinite_amount", "invalid_field", lambda e: _replace_amount(e, b"1e400")),
    BadCase("empty_event_id", "invalid_field", lambda e: _json_with(e, event_id="")),
    # a NUL-led card id is how the worker keys its own state in the changelog (state/partition.py)
    BadCase(
        "card_id_with_nul",
        "invalid_field",
        lambda e: _json_with(e, card_id="\x00drift-monitors"),
        key=lambda e: b"\x00drift-monitors",
    ),
    BadCase("json_array", "invalid_field", lambda e: b"[" + msgspec.json.encode(e) + b"]"),
    BadCase("oversized", "oversized", lambda e: _json_with(e, note="x" * 200_000)),
    BadCase("empty_value", "empty_value", lambda e: b""),
    # as seen in issue 12: carried twice, the key made the dead letter larger than a broker takes
    BadCase(
        "oversized_key",
        "oversized_key",
        lambda e: msgspec.json.encode(e)[:40],
        key=lambda e: e.card_id.encode() * (520_000 // len(e.card_id) + 1),
    ),
    BadCase(
        "avro_unknown_schema_id",
        "unknown_schema_id",
        lambda e: struct.pack(">bI", 0, 999_999) + b"\x02a",
    ),
    BadCase("avro_truncated", "truncated_avro", lambda e: b"\x00\x00\x00"),
    BadCase(
        "avro_garbage_body", "malformed_avro", lambda e: struct.pack(">bI", 0, 1) + b"\xff" * 3
    ),
    # well-formed, refused by the rules of stream_app.event_checks (sent keyed by the card id,
    # with a broker timestamp near the event's own time)
    BadCase("dated_2100", "event_time_in_future", lambda e: _json_with(e, event_time=YEAR_2100)),
    BadCase("dated_2_pow_62", "event_time_in_future", lambda e: _json_with(e, event_time=2**62)),
    BadCase("dated_1970", "event_time_too_old", lambda e: _json_with(e, event_time=1)),
    BadCase("amount_1e308", "amount_implausible", lambda e: _json_with(e, amount=1e308)),
    BadCase("other_card", "key_mismatch", lambda e: _json_with(e, card_id=e.card_id + "-x")),
)


def make_bad(event: Transaction, index: int) -> tuple[BadCase, bytes]:
    """The ``index``-th case of the catalogue (cycling), built from a valid event."""
    case = CATALOGUE[index % len(CATALOGUE)]
    return case, case.make(event)
