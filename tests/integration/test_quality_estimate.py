"""``stream-app estimate`` on the real broker and sink: the stored estimate is the one
``models/estimation.py`` gives on the same rows, and ``quality_estimated`` puts it beside the
realised figures of its window."""

from __future__ import annotations

import random

import pytest
from confluent_kafka import Producer

from models.estimation import METRICS, Estimator
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.devtools.labels import DAY_MS
from stream_app.estimating.job import estimate
from stream_app.kafka.config import producer_config
from stream_app.settings import Settings
from stream_app.timing import now_ms
from tests.integration.conftest import count, serving_sink, wait_for
from tests.integration.test_quality import (
    HOUR_MS,
    THRESHOLD,
    Scored,
    close,
    expected_windows,
    send,
    view,
)

pytestmark = pytest.mark.integration

REFERENCE_HOURS = 12


def scored_set(seed: int = 5) -> tuple[list[Scored], dict[str, str]]:
    """Two versions over 30 hours of event time, frauds scoring higher and coming in episodes
    of a card; chargebacks for most events. Also each event's terminal."""
    rng = random.Random(seed)
    start = now_ms() // DAY_MS * DAY_MS - 5 * DAY_MS
    rows, terminals = [], {}
    for i in range(2_000):
        card = rng.randrange(150)
        fraud = rng.random() < (0.4 if card < 15 else 0.05)
        score = min(1.0, max(0.0, rng.gauss(0.65 if fraud else 0.35, 0.2)))
        chargeback = fraud if rng.random() < 0.9 else None
        feedback = fraud if score >= THRESHOLD and rng.random() < 0.3 else None
        rows.append(
            Scored(
                f"e{i:05d}", f"card-{card}", rng.choice(["1", "2"]),
                start + rng.randrange(30 * HOUR_MS), score, chargeback, feedback,
            )
        )  # fmt: skip
        terminals[f"e{i:05d}"] = f"m-{rng.randrange(40)}"
    return rows, terminals


def send_transactions(settings: Settings, rows: list[Scored], terminals: dict[str, str]) -> None:
    codec = topic_codec(settings, schema_registry(settings), "transactions")
    producer = Producer(producer_config(settings))
    for r in rows:
        event = {
            "event_id": r.event_id, "card_id": r.card_id, "merchant_id": terminals[r.event_id],
            "merchant_category": "grocery", "amount": 12.5, "currency": "EUR", "channel": "pos",
            "card_country": "DE", "merchant_country": "DE", "event_time": r.event_time,
        }  # fmt: skip
        producer.produce(settings.topics.transactions, codec.encode(event), r.card_id.encode())
    assert producer.flush(30) == 0


def expected_estimates(
    rows: list[Scored], terminals: dict[str, str]
) -> dict[tuple[str, str, int], dict[str, float]]:
    """The job's figures computed here: each version's reference (its first hours, chargebacks
    only), the estimator, every window that ends after the reference."""
    expected = {}
    for version in sorted({r.model_version for r in rows}):
        mine = [r for r in rows if r.model_version == version]
        mine.sort(key=lambda r: (r.event_time, r.event_id))
        end = mine[0].event_time + REFERENCE_HOURS * HOUR_MS
        reference = [r for r in mine if r.event_time < end and r.chargeback is not None]
        estimator = Estimator.fit(
            [r.score for r in reference],
            [r.chargeback for r in reference],
            [r.flagged for r in reference],
            clusters=[[r.card_id for r in reference], [terminals[r.event_id] for r in reference]],
        )
        for window, width in (("hour", HOUR_MS), ("day", DAY_MS)):
            starts = sorted({r.event_time // width * width for r in mine})
            for start in (s for s in starts if s + width > end):
                group = [r for r in mine if r.event_time // width * width == start]
                figures = estimator.estimate([r.score for r in group], [r.flagged for r in group])
                expected[(version, window, start)] = {
                    **{f"{m}": figures[m].estimate for m in METRICS},
                    **{f"{m}_low": figures[m].low for m in METRICS},
                    **{f"{m}_high": figures[m].high for m in METRICS},
                }
    return expected


def test_the_stored_estimate_is_the_estimators_and_sits_beside_the_realised_figures(
    make_settings, tmp_path
):
    settings = make_settings(
        estimate_reference_hours=REFERENCE_HOURS, estimate_min_reference_frauds=5,
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}",
    )  # fmt: skip
    rows, terminals = scored_set()
    expected = expected_estimates(rows, terminals)
    realised = {
        "hour": expected_windows(rows, HOUR_MS),
        "day": expected_windows(rows, DAY_MS),
    }
    # the sink as its own process: the job reads through its endpoint, never opening the data
    with serving_sink(settings, tmp_path) as (_, settings):
        send_transactions(settings, rows, terminals)
        labels = send(settings, rows)
        wait_for(
            lambda: (
                count(settings, "SELECT count() FROM events") == len(rows)
                and count(settings, "SELECT count() FROM predictions") == len(rows)
                and count(settings, "SELECT count() FROM labels_raw") == labels
            ),
            60,
            "events, predictions and labels stored",
        )
        assert len(estimate(settings)) == len(expected)
        wait_for(
            lambda: count(settings, "SELECT count() FROM quality_estimates") == len(expected),
            60,
            "estimates stored",
        )
        stored = view(
            settings,
            "SELECT *, toUnixTimestamp64Milli(window_start) AS start_ms FROM quality_estimated",
        )
    assert len(stored) == len(expected)
    for got in stored:
        key = (got["model_version"], got["window"], int(got["start_ms"]))
        for name, value in expected[key].items():
            column = f"estimated_{name}" if name in METRICS else name
            assert close(got[column], value), (key, column)
        # beside it, the realised figures of the same window (as quality_hourly / _daily give)
        want = realised[got["window"]][(got["model_version"], int(got["start_ms"]))]
        assert int(got["labelled"]) == want["labelled"]
        for name in METRICS:
            assert close(got[f"realised_{name}"], want[name]), (key, name)
