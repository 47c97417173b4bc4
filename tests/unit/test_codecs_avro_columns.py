"""The column-wise Avro encoder writes exactly fastavro's bytes: the prediction schema on random
batches (unicode strings, negative and extreme longs, NaN and infinite doubles, nulls and values
in the optional fields, values repeated on every row), numpy columns, and the schemas and inputs
it refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.codecs.avro import AvroRecordCodec, load_schema
from stream_app.codecs.avro_columns import (
    SMALL_LONGS,
    ColumnEncoder,
    write_longs,
    write_strings,
)
from stream_app.codecs.registry import FileSchemaRegistry

HYPOTHESIS = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(st.characters(codec="utf-8"), max_size=70)  # lengths past one varint byte
DOUBLES = st.floats(allow_nan=True, allow_infinity=True)


@pytest.fixture(scope="module")
def predictions(session_registry: FileSchemaRegistry, session_schemas_dir: Path) -> AvroRecordCodec:
    schema = load_schema(session_schemas_dir, "prediction.avsc")
    return AvroRecordCodec(session_registry, "predictions-value", schema)


#: any record of the prediction schema
PREDICTIONS = st.fixed_dictionaries(
    {
        "event_id": TEXT,
        "card_id": TEXT,
        "event_time": INT64,
        "input_create_time": INT64,
        "scored_time": INT64,
        "model_version": TEXT,
        "score": DOUBLES,
        "decision": st.sampled_from(["approve", "decline"]),
        "worker_id": TEXT,
        "source_partition": INT32,
        "source_offset": INT64,
        "challenger_version": st.none() | TEXT,
        "challenger_score": st.none() | DOUBLES,
    }
)


PREDICTION = {
    "event_id": "e-1",
    "card_id": "card-000001",
    "event_time": 1_767_225_600_000,
    "input_create_time": 1_767_225_600_050,
    "scored_time": 1_767_225_600_100,
    "model_version": "1",
    "score": 0.5,
    "decision": "approve",
    "worker_id": "w-1",
    "source_partition": 0,
    "source_offset": 0,
    "challenger_version": None,
    "challenger_score": None,
}


def as_columns(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [record[name] for record in records] for name in records[0]}


@HYPOTHESIS
@given(records=st.lists(PREDICTIONS, min_size=1, max_size=20))
def test_a_batch_is_encoded_as_fastavro_encodes_each_record(
    predictions: AvroRecordCodec, records: list[dict[str, Any]]
) -> None:
    expected = [predictions.encode(record) for record in records]
    assert predictions.encode_columns(as_columns(records)) == expected


@HYPOTHESIS
@given(record=PREDICTIONS, rows=st.integers(1, 5))
def test_a_value_repeated_on_every_row_is_encoded_as_fastavro_does(
    predictions: AvroRecordCodec, record: dict[str, Any], rows: int
) -> None:
    assert (
        predictions.encode_columns(as_columns([record] * rows))
        == [predictions.encode(record)] * rows
    )


@HYPOTHESIS
@given(records=st.lists(PREDICTIONS, min_size=1, max_size=10), shared=PREDICTIONS)
def test_constants_are_encoded_as_fastavro_encodes_them_on_every_row(
    predictions: AvroRecordCodec, records: list[dict[str, Any]], shared: dict[str, Any]
) -> None:
    constant_fields = ("scored_time", "model_version", "worker_id", "challenger_version")
    constants = {name: shared[name] for name in constant_fields}
    expected = [predictions.encode({**record, **constants}) for record in records]
    columns = {k: v for k, v in as_columns(records).items() if k not in constants}
    assert predictions.encode_columns(columns, constants) == expected


@HYPOTHESIS
@given(values=st.lists(INT64, min_size=1, max_size=SMALL_LONGS - 1))
def test_a_small_column_of_longs_is_written_as_the_numpy_path_writes_it(values: list[int]) -> None:
    """Below ``SMALL_LONGS`` values a Python loop writes the varints; repeated past the
    threshold the same values go through numpy: the bytes are the same."""
    repeats = SMALL_LONGS // len(values) + 1
    assert write_longs(values) == write_longs(values * repeats)[: len(values)]
    assert write_longs(np.array(values, dtype=np.int64)) == write_longs(values)


@HYPOTHESIS
@given(values=st.lists(TEXT, max_size=SMALL_LONGS))
def test_strings_are_prefixed_with_their_utf8_length_as_a_long(values: list[str]) -> None:
    encoded = [value.encode() for value in values]
    lengths = write_longs([len(data) for data in encoded] * (SMALL_LONGS + 1))
    assert write_strings(values) == [
        length + data for length, data in zip(lengths, encoded, strict=False)
    ]


def test_numpy_columns_are_encoded_as_their_python_values(predictions: AvroRecordCodec) -> None:
    rng = np.random.default_rng(7)
    rows = 1000
    columns: dict[str, Any] = {
        "event_id": [f"évènement-{i}" for i in range(rows)],
        "card_id": [f"card-{i % 37:06d}" for i in range(rows)],
        "event_time": rng.integers(-(2**62), 2**62, rows, dtype=np.int64),
        "input_create_time": rng.integers(0, 2**41, rows, dtype=np.int64),
        "scored_time": [1_767_225_600_000] * rows,
        "model_version": ["3"] * rows,
        "score": rng.random(rows),
        "decision": ["approve"] * rows,
        "worker_id": ["w-1"] * rows,
        "source_partition": rng.integers(0, 64, rows, dtype=np.int32),
        "source_offset": rng.integers(0, 2**40, rows),
        "challenger_version": [None if i % 3 else "4" for i in range(rows)],
        "challenger_score": [None if i % 3 else float(i) for i in range(rows)],
    }
    python_values = {
        name: column.tolist() if isinstance(column, np.ndarray) else column
        for name, column in columns.items()
    }
    expected = [
        predictions.encode({name: column[row] for name, column in python_values.items()})
        for row in range(rows)
    ]
    assert predictions.encode_columns(columns) == expected


def test_equal_values_that_encode_differently_are_not_written_once(
    predictions: AvroRecordCodec,
) -> None:
    records = [{**PREDICTION, "score": zero, "challenger_score": zero} for zero in (0.0, -0.0)]
    expected = [predictions.encode(record) for record in records]
    assert expected[0] != expected[1]
    assert predictions.encode_columns(as_columns(records)) == expected


def test_a_constant_is_encoded_again_when_it_changes() -> None:
    """The encoder keeps a constant's bytes from one batch to the next, never a stale one
    (0.0 and -0.0 are equal and encode differently)."""
    fields = [{"name": "x", "type": "double"}, {"name": "n", "type": "long"}]
    encoder = ColumnEncoder({"type": "record", "name": "R", "fields": fields})
    rows = [encoder.encode({"n": [1]}, constants={"x": zero})[0] for zero in (0.0, -0.0, 0.0)]
    assert rows == [b"\x00" * 8 + b"\x02", b"\x00" * 7 + b"\x80\x02", b"\x00" * 8 + b"\x02"]


def test_an_empty_batch_has_no_records(
    predictions: AvroRecordCodec, session_schemas_dir: Path
) -> None:
    fields = load_schema(session_schemas_dir, "prediction.avsc")["fields"]
    assert predictions.encode_columns({field["name"]: [] for field in fields}) == []


def test_a_schema_with_other_types_is_refused(
    session_registry: FileSchemaRegistry, session_schemas_dir: Path
) -> None:
    alerts = AvroRecordCodec(
        session_registry, "alerts-value", load_schema(session_schemas_dir, "alert.avsc")
    )
    with pytest.raises(ValueError, match="cannot encode column-wise"):
        alerts.encode_columns({})


@pytest.mark.parametrize(
    ("columns", "error"),
    [
        ({"n": [1, 2], "s": ["a"]}, ValueError),  # unequal lengths
        ({"s": ["a"]}, KeyError),  # a field missing
        ({"n": ["1"], "s": ["a"]}, TypeError),  # a string for a long
        ({"n": [1.5, 2], "s": ["a", "b"]}, TypeError),  # a float for a long
        ({"n": [1], "s": [1]}, TypeError),  # a number for a string
    ],
)
def test_columns_that_do_not_fit_the_schema_raise(
    columns: dict[str, list[Any]], error: type[Exception]
) -> None:
    encoder = ColumnEncoder(
        {
            "type": "record",
            "name": "R",
            "fields": [{"name": "n", "type": "long"}, {"name": "s", "type": "string"}],
        }
    )
    with pytest.raises(error):
        encoder.encode(columns)
