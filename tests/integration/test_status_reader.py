"""The status topic is writable by anyone with broker access: a record there that is not a
status must not stop `models promote` and `models list`, which read it (issue 12's rule: no
single record stops a process)."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from stream_app.codecs.factory import schema_registry
from stream_app.control.client import StatusReader
from stream_app.control.commands import ControlCodecs, ControlStatus
from stream_app.kafka.config import producer_config

pytestmark = pytest.mark.integration


def test_a_record_that_is_not_a_status_is_passed_over(make_settings):
    settings = make_settings()
    status = ControlStatus(
        command_id="c-1", command="promote", version="1", worker_id="w-1", status="applied",
        reason="", champion_version="1", challenger_version=None, pause_ms=1.5,
        acknowledged_at=1,
    )  # fmt: skip
    producer = Producer(producer_config(settings))
    topic = settings.topics.control_status
    for value in (b"\x00\x00\x00\x00\x05not avro", b"plain text", None):
        producer.produce(topic, value, b"w-x")
    producer.produce(
        topic, ControlCodecs(settings, schema_registry(settings)).encode_status(status), b"w-1"
    )
    assert producer.flush(30) == 0

    reader = StatusReader(settings)
    try:
        assert list(reader.read_to_end()) == [status]
    finally:
        reader.close()
