"""The column-wise Avro reader gives exactly fastavro's values (random prediction batches), and
leaves to the record-by-record path every batch holding a record fastavro refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_app.codecs.avro import AvroRecordCodec, frame, load_schema
from stream_app.codecs.registry import FileSchemaRegistry
from stream_app.errors import CodecError
from tests.columns import by_record, comparable_record
from tests.unit.test_codecs_avro_columns import HYPOTHESIS, PREDICTION, PREDICTIONS


@pytest.fixture(scope="module")
def predictions(session_registry: FileSchemaRegistry, session_schemas_dir: Path) -> AvroRecordCodec:
    schema = load_schema(session_schemas_dir, "prediction.avsc")
    return AvroRecordCodec(session_registry, "predictions-value", schema)


@HYPOTHESIS
@given(records=st.lists(PREDICTIONS, min_size=1, max_size=20))
def test_a_batch_is_decoded_as_fastavro_decodes_each_record(
    predictions: AvroRecordCodec, records: list[dict[str, Any]]
) -> None:
    values = [predictions.encode(record) for record in records]
    columns = predictions.decode_columns(values)
    assert columns is not None
    expected = [comparable_record(predictions.decode(v)) for v in values]
    assert by_record(columns) == expected


def test_an_empty_batch_has_empty_columns(predictions: AvroRecordCodec) -> None:
    columns = predictions.decode_columns([])
    assert columns is not None
    assert set(columns) == set(PREDICTION)
    assert not any(columns.values())


def _truncated(body: bytes) -> bytes:
    return body[:-1]


def _trailing(body: bytes) -> bytes:
    return body + b"\x00"


def _bad_branch(body: bytes) -> bytes:
    # PREDICTION ends with two nulls (branch 0 each): make the last one branch 2 (no such branch)
    return body[:-1] + b"\x04"


def _invalid_utf8(body: bytes) -> bytes:
    # the first field is event_id "e-1" (length 3 as the varint 0x06): make its bytes invalid
    return body[:1] + b"\xff\xfe\xfd" + body[4:]


@pytest.mark.parametrize("corrupt", [_truncated, _trailing, _bad_branch, _invalid_utf8])
def test_a_batch_with_a_record_fastavro_refuses_is_left_to_the_record_by_record_path(
    predictions: AvroRecordCodec, corrupt: Any
) -> None:
    good = predictions.encode(PREDICTION)
    bad = frame(predictions.schema_id, corrupt(good[5:]))
    with pytest.raises(CodecError):
        predictions.decode(bad)
    assert predictions.decode_columns([good, good, bad, good]) is None
    assert predictions.decode_columns([good, good, good]) is not None


def test_a_record_of_another_schema_id_is_left_to_the_record_by_record_path(
    predictions: AvroRecordCodec,
) -> None:
    good = predictions.encode(PREDICTION)
    other = frame(predictions.schema_id + 1, good[5:])
    assert predictions.decode_columns([good, other]) is None


def test_a_schema_that_is_not_flat_is_not_read_column_wise(
    session_registry: FileSchemaRegistry, session_schemas_dir: Path
) -> None:
    alerts = AvroRecordCodec(
        session_registry, "alerts-value", load_schema(session_schemas_dir, "alert.avsc")
    )
    record = {
        "event_id": "e",
        "card_id": "c",
        "event_time": 1,
        "input_create_time": 2,
        "alerted_time": 3,
        "score": 0.9,
        "model_version": "1",
        "rules": ["score"],
        "severity": "high",
        "amount": 10.0,
        "merchant_category": "fuel",
        "top_features": ["amount"],
        "top_contributions": [0.5],
        "worker_id": "w",
    }
    assert alerts.decode_columns([alerts.encode(record)]) is None
