"""Every case of the bad-event catalogue is refused with exactly its reason, by the decoder or by
the event checks, sent as producers send it: keyed by its card, stamped at its event time."""

from __future__ import annotations

import itertools

import pytest

from stream_app.codecs.detect import TransactionDecoder
from stream_app.codecs.factory import schema_registry, transaction_decoder
from stream_app.codecs.json import JsonCodec
from stream_app.devtools.bad_events import CATALOGUE, BadCase, card_key, make_bad
from stream_app.devtools.generator import TransactionGenerator
from stream_app.errors import CodecError
from stream_app.event_checks import EventChecks
from stream_app.events import Transaction
from stream_app.settings import Settings

EVENTS = [g.event for g in itertools.islice(TransactionGenerator(seed=11), 25)]


@pytest.fixture
def decoder(settings: Settings) -> TransactionDecoder:
    return transaction_decoder(settings, schema_registry(settings))


def test_catalogue_is_large_with_unique_names() -> None:
    assert len(CATALOGUE) >= 10
    assert len({case.name for case in CATALOGUE}) == len(CATALOGUE)
    assert len({case.reason for case in CATALOGUE}) >= 8, "the cases should cover many reasons"


def admit(
    decoder: TransactionDecoder, checks: EventChecks, value: bytes, sent: Transaction
) -> None:
    """Cases of a bad value (a bad key is the pipeline's to refuse: test_scoring_pipeline)."""
    checks.check(decoder.decode(value), sent.card_id.encode(), (1, sent.event_time))


@pytest.mark.parametrize("case", [c for c in CATALOGUE if c.key is card_key], ids=lambda c: c.name)
def test_case_is_refused_with_its_reason(
    decoder: TransactionDecoder, settings: Settings, case: BadCase
) -> None:
    """Cases of a bad value (a bad key is the pipeline's to refuse: test_scoring_pipeline)."""
    checks = EventChecks.from_settings(settings)
    for event in EVENTS:
        with pytest.raises(CodecError) as raised:
            admit(decoder, checks, case.make(event), event)
        assert raised.value.reason == case.reason, (case.name, str(raised.value))


def test_the_valid_events_themselves_pass(decoder: TransactionDecoder, settings: Settings) -> None:
    """The cases fail because of what they change, not because the base event is bad."""
    codec = JsonCodec()
    checks = EventChecks.from_settings(settings)
    assert [decoder.decode(codec.encode(e)) for e in EVENTS] == EVENTS
    for event in EVENTS:
        admit(decoder, checks, codec.encode(event), event)


def test_make_bad_cycles_through_the_catalogue() -> None:
    event: Transaction = EVENTS[0]
    names = [make_bad(event, i)[0].name for i in range(2 * len(CATALOGUE))]
    assert names == [c.name for c in CATALOGUE] * 2
