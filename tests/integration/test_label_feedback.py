"""``stream-app label-feedback`` through the real broker: the first ``per_day`` alerted events of
each day of event time get an ``alert_feedback`` label from the truth file, hours later; its
offsets are committed, so a restart labels nothing twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.devtools.feedback import HOUR_MS, FeedbackOptions, run_feedback
from stream_app.devtools.labels import DAY_MS
from stream_app.kafka.config import producer_config
from stream_app.settings import Settings
from stream_app.timing import now_ms
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration


def send_alerts(settings: Settings, alerted: list[tuple[str, int]]) -> None:
    codec = topic_codec(settings, schema_registry(settings), "alerts")
    producer = Producer(producer_config(settings))
    for event_id, event_time in alerted:
        alert = {
            "event_id": event_id, "card_id": "card-7", "event_time": event_time,
            "input_create_time": event_time, "alerted_time": event_time, "score": 0.9,
            "model_version": "1", "rules": ["high_score"], "severity": "high", "amount": 10.0,
            "merchant_category": "grocery", "top_features": [], "top_contributions": [],
            "worker_id": "w",
        }  # fmt: skip
        producer.produce(settings.topics.alerts, codec.encode(alert), b"card-7")
    assert producer.flush(30) == 0


def until(count: int, timeout_s: float = 60.0) -> Callable[[int], bool]:
    deadline = time.monotonic() + timeout_s

    def stop(sent: int) -> bool:
        assert time.monotonic() < deadline, f"{sent} labels sent, {count} expected"
        return sent >= count

    return stop


def test_the_first_alerts_of_each_day_get_a_verdict_from_the_truth(make_settings, tmp_path: Path):
    settings = make_settings()
    truth = tmp_path / "truth.txt"
    truth.write_text("a0\na3\nb1\n")
    day = now_ms() // DAY_MS * DAY_MS - 3 * DAY_MS
    alerted = [("a0", day + 1), ("a1", day + 2), ("a1", day + 2), ("a2", day + 3), ("a3", day + 4)]
    alerted += [("b0", day + DAY_MS), ("b1", day + DAY_MS + 5)]
    send_alerts(settings, alerted)
    options = FeedbackOptions(per_day=3)
    assert run_feedback(settings, truth, options, until(5)) == 5

    records = read_topic(settings, settings.topics.labels, expected=5)
    codec = topic_codec(settings, schema_registry(settings), "labels")
    labels = sorted((codec.decode(r.value()) for r in records), key=lambda x: x["event_id"])
    # a1 alerted twice is checked once; a3 is past the day's three
    assert [(x["event_id"], x["is_fraud"]) for x in labels] == [
        ("a0", True), ("a1", False), ("a2", False), ("b0", False), ("b1", True),
    ]  # fmt: skip
    for x in labels:
        assert x["label_source"] == "alert_feedback"
        assert HOUR_MS <= x["label_time"] - x["event_time"] <= 24 * HOUR_MS
    assert {r.key() for r in records} == {b"card-7"}

    # the same group again: the alerts were committed, nothing is labelled twice
    polls = iter(range(4))
    assert run_feedback(settings, truth, options, lambda _: next(polls, None) is None) == 0


def test_a_record_that_is_not_an_alert_is_passed_over(make_settings, tmp_path: Path):
    """One bad record must not stop the labeller, nor crash-loop it on restart."""
    settings = make_settings()
    truth = tmp_path / "truth.txt"
    truth.write_text("a0\n")
    producer = Producer(producer_config(settings))
    producer.produce(settings.topics.alerts, b"not an alert", b"card-7")
    assert producer.flush(30) == 0
    send_alerts(settings, [("a0", now_ms() - DAY_MS)])
    assert run_feedback(settings, truth, FeedbackOptions(per_day=3), until(1)) == 1
