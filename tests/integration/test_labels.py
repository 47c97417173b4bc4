"""Labels through the real broker and sink: the first label per event and source is what counts,
and ``stream-app produce --labels`` gives each valid event at most one chargeback label."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Producer

from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.devtools.labels import DAY_MS, Label
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import producer_config
from stream_app.settings import Settings
from stream_app.timing import now_ms
from stream_app.warehouse.ingest import WarehouseIngest
from stream_app.warehouse.metrics import ingest_metrics
from tests.integration.conftest import count, query_warehouse, wait_for

pytestmark = pytest.mark.integration

T0 = now_ms() // DAY_MS * DAY_MS - 30 * DAY_MS  # within the tables' retention


def send(settings: Settings, labels: list[Label]) -> None:
    codec = topic_codec(settings, schema_registry(settings), "labels")
    producer = Producer(producer_config(settings))
    for label in labels:
        producer.produce(
            settings.topics.labels, codec.encode(label.record()), label.card_id.encode()
        )
    assert producer.flush(30) == 0


def stored(settings: Settings, raw_rows: int) -> list[list[Any]]:
    """The ``labels`` view once ``raw_rows`` records are in the raw table."""
    wait_for(
        lambda: count(settings, "SELECT count() FROM labels_raw") >= raw_rows,
        60,
        f"{raw_rows} label records stored",
    )
    assert count(settings, "SELECT count() FROM labels_raw") == raw_rows
    query = (
        "SELECT event_id, label_source, is_fraud, toUnixTimestamp64Milli(label_time) "
        "FROM labels ORDER BY event_id, label_source"
    )
    return query_warehouse(settings, query)[1]


def labels_counted(ingest: WarehouseIngest, expected: int) -> dict[str, float]:
    """``stream_app_sink_labels_total`` by source, as a scrape reads it, once it adds up to
    ``expected`` (the counter moves right after the insert)."""

    def counted() -> dict[str, float]:
        return {
            sample.labels["source"]: sample.value
            for family in ingest_metrics(ingest.stats).collect()
            for sample in family.samples
            if sample.name == "stream_app_sink_labels_total"
        }

    wait_for(lambda: sum(counted().values()) >= expected, 30, f"{expected} labels counted")
    return counted()


def test_a_label_sent_twice_or_late_changes_nothing_already_stored(make_settings, running_sink):
    settings = make_settings()

    def label(event: str, fraud: bool, source: Any, after_days: float) -> Label:
        return Label(event, "card-1", fraud, source, T0 + round(after_days * DAY_MS), T0)

    first = [
        label("e1", True, "chargeback", 10),
        label("e1", True, "chargeback", 10),  # the same record again
        label("e1", False, "chargeback", 20),  # a contradicting one, later
        label("e1", True, "alert_feedback", 0.1),  # the other source counts on its own
        label("e2", False, "chargeback", 40),
    ]
    expected = [
        ["e1", "alert_feedback", True, T0 + round(0.1 * DAY_MS)],
        ["e1", "chargeback", True, T0 + 10 * DAY_MS],
        ["e2", "chargeback", False, T0 + 40 * DAY_MS],
    ]
    with running_sink(settings) as sink:
        send(settings, first)
        assert stored(settings, len(first)) == expected
        # every record stored counts, by its source (the view keeps the first per source)
        assert labels_counted(sink.loop, len(first)) == {"chargeback": 4, "alert_feedback": 1}
        late = [
            label("e1", False, "chargeback", 5),  # arrives after, claims an earlier label time
            label("e2", True, "chargeback", 1),
            label("e1", False, "alert_feedback", 0.05),
        ]
        send(settings, late)
        assert stored(settings, len(first) + len(late)) == expected
        counted = labels_counted(sink.loop, len(first) + len(late))
        assert counted == {"chargeback": 6, "alert_feedback": 2}


def test_produced_chargeback_labels_land_once_per_labelled_event(
    make_settings, running_sink, tmp_path
):
    settings = make_settings()
    truth = tmp_path / "truth.txt"
    options = ProduceOptions(events=3000, seed=5, fraud_rate=0.05, labels=True, truth_file=truth)
    report = produce(settings, options)
    frauds = truth.read_text().splitlines()
    assert len(frauds) == len(set(frauds)) == report.fraud
    # some labels never come (the default shares are 10 % of frauds, 5 % of the rest)
    assert 0.85 * report.valid < report.labels < report.valid
    with running_sink(settings):
        wait_for(
            lambda: count(settings, "SELECT count() FROM labels") >= report.labels,
            60,
            "every label stored",
        )
        assert count(settings, "SELECT count() FROM labels") == report.labels
        assert count(settings, "SELECT countIf(label_source = 'chargeback') FROM labels") == (
            report.labels
        )
        # every label is a produced event's, due after it, and frauds are labelled fraud
        wait_for(lambda: count(settings, "SELECT count() FROM events") >= report.valid, 60)
        orphan = "SELECT count() FROM labels WHERE event_id NOT IN (SELECT event_id FROM events)"
        assert count(settings, orphan) == 0
        assert count(settings, "SELECT countIf(label_time <= event_time) FROM labels") == 0
        # the chargebacks tell the truth file's frauds, and only those
        labelled_fraud = query_warehouse(settings, "SELECT event_id FROM labels WHERE is_fraud")[1]
        assert 0.85 * report.fraud <= len(labelled_fraud) < report.fraud
        assert {row[0] for row in labelled_fraud} <= set(frauds)
