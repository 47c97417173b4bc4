"""The drift monitors in a running worker: detections land in ``drift_events`` after a scheduled
covariate shift and not before it, and the monitors' state survives a restart.

Every run here is deterministic: the session's model is trained with a fixed seed
(``deterministic=True``), the stream is the generator's for a fixed seed, each input partition's
events reach its monitors in offset order whatever the batches, and a monitor's detections
depend only on the values it reads. So "no detection before the drift point" either holds for
these seeds or always fails; it cannot flake (the monitors' rate is one false alarm per 500,000
events per monitor on a stationary stream, ``monitors/calibrated.py``).

The streams span minutes of event time, far less than the score monitor's warm-up after a cold
start (a day by default): the workers here run without it, so that the score monitors read
every event (the warm-up has its own tests, ``tests/unit/test_drift_observer.py``).
"""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import consumer_config
from stream_app.kafka.drain import read_to_end
from stream_app.scoring.build import build_loop
from stream_app.scoring.drift import MONITORS_KEY
from tests.integration.conftest import (
    count,
    in_thread,
    query_warehouse,
    wait_for,
    wait_until_stored,
)

pytestmark = pytest.mark.integration


def test_a_covariate_shift_is_a_drift_events_row_after_its_point_and_none_before(
    make_settings, running_sink, running_worker
):
    settings = make_settings(drift_score_warmup_s=0.0)
    options = ProduceOptions(events=20_000, seed=7, drift="covariate-shift")
    report = produce(settings, options)
    (point,) = report.drift
    assert point.index == 10_000
    with running_sink(settings), running_worker(settings):
        wait_until_stored(settings, report)
        wait_for(lambda: count(settings, "SELECT count() FROM drift_events") > 0, 60, "a row")
    _, rows = query_warehouse(
        settings,
        "SELECT signal, feature, detector, toUnixTimestamp64Milli(event_time), statistic,"
        " threshold, model_version FROM drift_events",
    )
    first = min(int(row[3]) for row in rows)
    assert first >= point.event_time, (point, rows)
    assert {row[0] for row in rows} == {"score", "feature"}, rows
    assert all(float(row[4]) > float(row[5]) for row in rows)
    assert {row[6] for row in rows} == {"1"}


def read_all(settings, topic: str, partition: int) -> list[Message]:
    consumer = Consumer(consumer_config(settings, f"reader-{uuid.uuid4().hex[:8]}"))
    try:
        return list(read_to_end(consumer, TopicPartition(topic, partition, OFFSET_BEGINNING)))
    finally:
        consumer.close()


def detections(settings) -> int:
    """Records on the drift-events topic (one partition)."""
    return len(read_all(settings, settings.topics.drift_events, 0))


def monitor_states(settings) -> dict[int, dict]:
    """The last monitor state each partition's changelog holds."""
    states = {}
    for p in range(settings.topics.partitions):
        for record in read_all(settings, settings.topics.card_state, p):
            if record.key() == MONITORS_KEY:
                states[p] = json.loads(record.value())
    return states


def events_read(states: dict[int, dict]) -> int:
    """Events the score monitors read, over every partition (their running mean's count)."""
    return sum(int(state["1"]["score"]["mean"][0]) for state in states.values())


def test_the_monitors_continue_from_their_checkpoint_after_a_restart(make_settings):
    # the rows are held back until a checkpoint: its state must have read them all
    settings = make_settings(drift_update_rows=100_000, drift_score_warmup_s=0.0)
    first = produce(settings, ProduceOptions(events=6_000, seed=21))
    with in_thread(build_loop(settings)) as running:
        wait_for(lambda: running.loop.stats.scored == first.valid, 120, "the first part scored")
    saved = monitor_states(settings)  # written by the checkpoint on stop
    assert sorted(saved) == list(range(settings.topics.partitions))
    assert events_read(saved) == first.valid  # nothing detected: no monitor started afresh
    assert detections(settings) == 0

    restarted = build_loop(settings)
    with in_thread(restarted) as running:
        partitions = settings.topics.partitions
        wait_for(lambda: len(running.loop.stats.assigned) == partitions, 60, "assignment")
        for p, state in saved.items():  # restored as saved
            restored = restarted.pipeline.store.partition(p).side_state(MONITORS_KEY)
            assert restored is not None and json.loads(restored) == state
        second = produce(settings, ProduceOptions(events=2_000, seed=22))
        wait_for(lambda: running.loop.stats.scored == second.valid, 120, "the second part scored")
    # the restarted worker's monitors went on from the saved state, they did not start afresh
    assert events_read(monitor_states(settings)) == first.valid + second.valid
    assert detections(settings) == 0
