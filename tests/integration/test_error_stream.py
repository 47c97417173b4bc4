"""``stream-app monitor-errors`` on the real broker and sink: the error stream of stored
chargebacks, a rise of the error rate detected after it and not before, across two runs that
share the monitors' state and the cursor."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from confluent_kafka import Producer

from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.devtools.labels import DAY_MS, Label
from stream_app.error_stream.job import WORKER_ID, monitor_errors
from stream_app.kafka.config import producer_config
from stream_app.settings import Settings
from stream_app.timing import now_ms
from tests.integration.conftest import count, serving_sink, wait_for
from tests.integration.test_quality import view

pytestmark = pytest.mark.integration

EVENTS, SWITCH = 3_000, 1_500
START = now_ms() // DAY_MS * DAY_MS - 5 * DAY_MS


def event_time(i: int) -> int:
    return START + i * 60_000


def send(settings: Settings, events: range, seed: int = 3) -> None:
    """Predictions and their chargebacks: the decision is wrong for 5 % of the events before
    ``SWITCH``, for 40 % from it on."""
    registry = schema_registry(settings)
    predictions = topic_codec(settings, registry, "predictions")
    labels = topic_codec(settings, registry, "labels")
    producer = Producer(producer_config(settings))
    rng = random.Random(seed)
    for i in events:
        card, flagged = f"card-{i % 200}", rng.random() < 0.1
        wrong = rng.random() < (0.05 if i < SWITCH else 0.4)
        prediction = {
            "event_id": f"e{i:05d}", "card_id": card, "event_time": event_time(i),
            "input_create_time": event_time(i), "scored_time": event_time(i),
            "model_version": "1", "score": 0.9 if flagged else 0.1,
            "decision": "decline" if flagged else "approve", "worker_id": "w",
            "source_partition": 0, "source_offset": i,
        }  # fmt: skip
        label = Label(
            f"e{i:05d}", card, flagged != wrong, "chargeback", event_time(i), event_time(i)
        )
        producer.produce(settings.topics.predictions, predictions.encode(prediction), card)
        producer.produce(settings.topics.labels, labels.encode(label.record()), card)
    assert producer.flush(30) == 0


def stored(settings: Settings, labels: int) -> None:
    wait_for(
        lambda: (
            count(settings, "SELECT count() FROM labels") == labels
            and count(settings, "SELECT count() FROM predictions") == labels
        ),
        60,
        f"{labels} predictions and labels stored",
    )


def test_a_rising_error_rate_is_detected_after_it_across_runs(make_settings, tmp_path: Path):
    settings = make_settings(
        error_monitor_state=tmp_path / "error-monitor.json",
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}",
    )
    # the sink as its own process: the job reads through its endpoint, never opening the data
    with serving_sink(settings, tmp_path) as (_, settings):
        send(settings, range(SWITCH))
        stored(settings, SWITCH)
        assert monitor_errors(settings) == []  # a stationary 5 %: no alarm
        send(settings, range(SWITCH, EVENTS))
        stored(settings, EVENTS)
        # the second run reads only the new labels: the rise shows only against the first
        # run's monitors, restored from the state file
        detections = monitor_errors(settings)
        assert detections, "the rise from 5 % to 40 % errors was not detected"
        assert all(d["event_time"] >= event_time(SWITCH) for d in detections)
        assert {d["detector"] for d in detections} <= {"adwin", "hddm_a"}
        # nothing new stored: a third run reads nothing (the cursor moved) and detects nothing
        assert monitor_errors(settings) == []
        wait_for(
            lambda: count(settings, "SELECT count() FROM drift_events") == len(detections),
            60,
            "detections stored",
        )
        rows = view(
            settings,
            "SELECT signal, detector, input_offset, toUnixTimestamp64Milli(event_time) AS t, "
            "worker_id FROM drift_events ORDER BY input_offset, detector",
        )
    expected = sorted((d["input_offset"], d["detector"]) for d in detections)
    assert [(int(r["input_offset"]), r["detector"]) for r in rows] == expected
    assert {r["signal"] for r in rows} == {"error"}
    assert {r["worker_id"] for r in rows} == {WORKER_ID}
    assert all(int(r["t"]) == event_time(int(r["input_offset"])) for r in rows)
