"""Every transaction codec obeys the same contract; a new codec cannot skip it.

The implementations are found by walking ``TransactionCodec.__subclasses__()`` after importing
every module of ``stream_app.codecs``; each needs an entry in ``FACTORIES``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.codecs.avro import AvroCodec, frame, load_schema
from stream_app.codecs.base import TransactionCodec
from stream_app.codecs.json import JsonCodec
from stream_app.codecs.registry import FileSchemaRegistry
from stream_app.errors import CodecError
from stream_app.events import MAX_ID_LENGTH, Transaction
from tests.unit.support import concrete_subclasses

CodecFactory = Callable[[FileSchemaRegistry, Path], TransactionCodec]

FACTORIES: dict[type, CodecFactory] = {
    JsonCodec: lambda registry, schemas: JsonCodec(),
    AvroCodec: lambda registry, schemas: AvroCodec(
        registry, load_schema(schemas, "transaction.avsc"), "transactions-value"
    ),
}

CODECS = concrete_subclasses(TransactionCodec)

HYPOTHESIS = settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])

_text = st.text(st.characters(codec="utf-8"), max_size=40)
_id = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc",)), min_size=1, max_size=MAX_ID_LENGTH
)

#: every value a valid Transaction may hold, including extreme floats and int64 times
transactions = st.builds(
    Transaction,
    event_id=_id,
    card_id=_id,
    merchant_id=_text,
    merchant_category=_text,
    amount=st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False),
    currency=_text,
    channel=st.one_of(st.sampled_from(("pos", "ecom", "atm")), _text),
    card_country=_text,
    merchant_country=_text,
    event_time=st.integers(min_value=1, max_value=2**63 - 1),
)

#: bytes no codec should take for an event: random, framed as Avro, or starting like JSON
garbage = st.one_of(
    st.binary(max_size=200),
    st.builds(frame, st.integers(0, 10), st.binary(max_size=200)),
    st.builds(lambda tail: b"{" + tail, st.binary(max_size=200)),
)


@pytest.fixture(scope="module")
def codecs(
    session_registry: FileSchemaRegistry, session_schemas_dir: Path
) -> dict[type, TransactionCodec]:
    """One instance of each codec, built by its factory (hypothesis reuses it per example)."""
    return {
        cls: FACTORIES[cls](session_registry, session_schemas_dir)
        for cls in CODECS
        if cls in FACTORIES
    }


def test_every_codec_has_a_factory() -> None:
    assert {JsonCodec, AvroCodec} <= set(CODECS), "discovery found fewer codecs than exist"
    missing = [c.__qualname__ for c in CODECS if c not in FACTORIES]
    assert not missing, f"add these codecs to FACTORIES so they go through the contract: {missing}"
    stale = [c.__qualname__ for c in FACTORIES if c not in CODECS]
    assert not stale, f"FACTORIES lists classes that are no longer concrete codecs: {stale}"


@pytest.mark.parametrize("codec_cls", CODECS, ids=lambda c: c.__name__)
@HYPOTHESIS
@given(event=transactions)
def test_round_trip(
    codec_cls: type, codecs: dict[type, TransactionCodec], event: Transaction
) -> None:
    codec = codecs[codec_cls]
    value = codec.encode(event)
    assert isinstance(value, bytes)
    assert codec.accepts(value)
    assert codec.decode(value) == event


@pytest.mark.parametrize("codec_cls", CODECS, ids=lambda c: c.__name__)
@HYPOTHESIS
@given(value=garbage)
def test_garbage_raises_codec_error_with_reason(
    codec_cls: type, codecs: dict[type, TransactionCodec], value: bytes
) -> None:
    codec = codecs[codec_cls]
    with pytest.raises(CodecError) as raised:
        codec.decode(value)
    assert raised.value.reason
    assert raised.value.reason.replace("_", "").isalnum(), raised.value.reason


@pytest.mark.parametrize("codec_cls", CODECS, ids=lambda c: c.__name__)
@HYPOTHESIS
@given(event=transactions, cut=st.integers(min_value=0), flip=st.integers(0, 255), data=st.data())
def test_corrupted_output_decodes_or_raises_codec_error(
    codec_cls: type,
    codecs: dict[type, TransactionCodec],
    event: Transaction,
    cut: int,
    flip: int,
    data: st.DataObject,
) -> None:
    """A damaged record still decodes to some Transaction or is a CodecError, never a crash."""
    codec = codecs[codec_cls]
    value = bytearray(codec.encode(event))
    position = data.draw(st.integers(0, len(value) - 1))
    value[position] ^= flip
    damaged = [bytes(value), bytes(value[: cut % len(value)]), bytes(value) + b"\x00\xff"]
    for candidate in damaged:
        try:
            decoded = codec.decode(candidate)
        except CodecError as exc:
            assert exc.reason
        else:
            assert isinstance(decoded, Transaction)
