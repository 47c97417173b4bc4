"""What the retrainer reads off the drift-events topic: a detection a run can name, or a record
passed over, never an error that ends the retrainer (and again at each restart, its offset not
committed)."""

from __future__ import annotations

from typing import Any

import pytest

from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.errors import CodecError
from stream_app.retraining.queries import RetrainError
from stream_app.retraining.service import read_detection
from stream_app.settings import Settings

DETECTION = {
    "event_time": 1_700_000_000_000,
    "detected_time": 1_700_000_000_500,
    "signal": "score",
    "feature": "",
    "detector": "psi",
    "statistic": 1.0,
    "threshold": 0.5,
    "model_version": "1",
    "input_partition": 3,
    "input_offset": 493,
    "worker_id": "w",
}


def test_a_detection_and_its_id(settings: Settings) -> None:
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    detection, event_id = read_detection(codec, codec.encode(DETECTION))
    assert (detection["detector"], event_id) == ("psi", "3:493:psi:")


@pytest.mark.parametrize(
    "change",
    [{"input_partition": -1}, {"input_offset": -5}, {"detector": ""}],
    ids=["negative-partition", "negative-offset", "empty-detector"],
)
def test_a_detection_no_run_could_name_is_a_retrain_error(
    settings: Settings, change: dict[str, Any]
) -> None:
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    with pytest.raises(RetrainError):
        read_detection(codec, codec.encode({**DETECTION, **change}))


@pytest.mark.parametrize("value", [None, b"", b"\x00\x00\x00\x00\x01"], ids=repr)
def test_a_record_that_is_no_detection_is_a_codec_error(
    settings: Settings, value: bytes | None
) -> None:
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    with pytest.raises(CodecError):
        read_detection(codec, value)
