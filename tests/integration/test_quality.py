"""Live quality views against the same figures computed independently in Python, on a small
labelled set of predictions and labels sent through the real broker and sink."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Producer

from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.devtools.labels import DAY_MS, Label, LabelSource
from stream_app.kafka.config import producer_config
from stream_app.settings import Settings
from stream_app.timing import now_ms
from tests.integration.conftest import count, query_warehouse, wait_for

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
K = 10
THRESHOLD = 0.6


@dataclass(frozen=True)
class Scored:
    """A prediction and the truth its labels tell (None: no label yet)."""

    event_id: str
    card_id: str
    model_version: str
    event_time: int
    score: float
    chargeback: bool | None
    feedback: bool | None

    @property
    def truth(self) -> bool | None:
        return self.chargeback if self.chargeback is not None else self.feedback

    @property
    def flagged(self) -> bool:
        return self.score >= THRESHOLD


def labelled_set(seed: int = 11) -> list[Scored]:
    """Two model versions over two days; frauds score higher; chargebacks for most events, alert
    feedback for a share of the flagged ones (now and then contradicting the chargeback)."""
    rng = random.Random(seed)
    start = now_ms() // DAY_MS * DAY_MS - 10 * DAY_MS
    rows = []
    for i in range(600):
        fraud = rng.random() < 0.15
        score = min(1.0, max(0.0, rng.gauss(0.7 if fraud else 0.35, 0.2)))
        chargeback = fraud if rng.random() < 0.7 else None
        feedback = None
        if score >= THRESHOLD and rng.random() < 0.5:
            feedback = fraud if rng.random() < 0.9 else not fraud
        rows.append(
            Scored(
                f"e{i}", f"card-{rng.randrange(60)}", rng.choice(["1", "2"]),
                start + rng.randrange(2 * DAY_MS), score, chargeback, feedback,
            )
        )  # fmt: skip
    return rows


def send(settings: Settings, rows: list[Scored]) -> int:
    registry = schema_registry(settings)
    predictions = topic_codec(settings, registry, "predictions")
    labels = topic_codec(settings, registry, "labels")
    producer = Producer(producer_config(settings))
    sent_labels = 0
    for r in rows:
        prediction = {
            "event_id": r.event_id, "card_id": r.card_id, "event_time": r.event_time,
            "input_create_time": r.event_time, "scored_time": r.event_time,
            "model_version": r.model_version, "score": r.score,
            "decision": "decline" if r.flagged else "approve", "worker_id": "w",
            "source_partition": 0, "source_offset": 0,
        }  # fmt: skip
        key = r.card_id.encode()
        producer.produce(settings.topics.predictions, predictions.encode(prediction), key)
        told: tuple[tuple[LabelSource, bool | None], ...] = (
            ("chargeback", r.chargeback), ("alert_feedback", r.feedback),
        )  # fmt: skip
        for source, truth in told:
            if truth is not None:
                label = Label(r.event_id, r.card_id, truth, source, r.event_time, r.event_time)
                producer.produce(settings.topics.labels, labels.encode(label.record()), key)
                sent_labels += 1
    assert producer.flush(30) == 0
    return sent_labels


def roc_auc(scores: list[float], truths: list[bool]) -> float:
    """Over every (fraud, legitimate) pair: the share ranked right, ties counting half."""
    positives = [s for s, t in zip(scores, truths, strict=True) if t]
    negatives = [s for s, t in zip(scores, truths, strict=True) if not t]
    right = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return right / (len(positives) * len(negatives))


def average_precision(scores: list[float], truths: list[bool]) -> float:
    """The area under the precision-recall curve as a step function (sklearn's definition)."""
    ranked = sorted(zip(scores, truths, strict=True), reverse=True)
    hits, total = 0, sum(truths)
    area = 0.0
    for rank, (_, truth) in enumerate(ranked, start=1):
        if truth:
            hits += 1
            area += hits / rank / total
    return area


def expected_windows(rows: list[Scored], width_ms: int) -> dict[tuple[str, int], dict[str, Any]]:
    groups: dict[tuple[str, int], list[Scored]] = defaultdict(list)
    for r in rows:
        groups[(r.model_version, r.event_time // width_ms * width_ms)].append(r)
    expected = {}
    for key, group in groups.items():
        known = [r for r in group if r.truth is not None]
        tp = sum(1 for r in known if r.flagged and r.truth)
        fp = sum(1 for r in known if r.flagged and not r.truth)
        fn = sum(1 for r in known if not r.flagged and r.truth)
        scores, truths = [r.score for r in known], [bool(r.truth) for r in known]
        expected[key] = {
            "predictions": len(group),
            "labelled": len(known),
            "chargeback_maturity": sum(r.chargeback is not None for r in group) / len(group),
            "feedback_maturity": sum(r.feedback is not None for r in group) / len(group),
            "positive_rate": sum(r.flagged for r in group) / len(group),
            "fraud_rate": sum(truths) / len(known),
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
            "roc_auc": roc_auc(scores, truths) if 0 < sum(truths) < len(truths) else None,
            "pr_auc": average_precision(scores, truths) if any(truths) else None,
            "score_quantiles": list(np.quantile([r.score for r in group], [0.5, 0.9, 0.99])),
        }
    return expected


def expected_at_k(
    rows: list[Scored], k: int = K
) -> dict[tuple[str, int], tuple[float, float, float]]:
    """P@k, the share of the top k labelled, CP@k per model version and day."""
    days: dict[tuple[str, int], list[Scored]] = defaultdict(list)
    for r in rows:
        days[(r.model_version, r.event_time // DAY_MS * DAY_MS)].append(r)
    expected = {}
    for key, group in days.items():
        events = sorted((r.score, bool(r.truth), r.truth is not None) for r in group)[::-1][:k]
        cards: dict[str, tuple[float, bool]] = {}
        for r in group:
            score, fraud = cards.get(r.card_id, (0.0, False))
            cards[r.card_id] = (max(score, r.score), fraud or bool(r.truth))
        top_cards = sorted(cards.values(), reverse=True)[:k]
        expected[key] = (
            sum(e[1] for e in events) / len(events),
            sum(e[2] for e in events) / len(events),
            sum(c[1] for c in top_cards) / len(top_cards),
        )
    return expected


def view(settings: Settings, query: str) -> list[dict[str, Any]]:
    names, rows = query_warehouse(settings, query)
    return [dict(zip(names, row, strict=True)) for row in rows]


def close(actual: Any, expected: Any) -> bool:
    if expected is None:  # undefined in Python: NaN in ClickHouse (null in JSON)
        return actual is None or actual != actual
    return bool(np.allclose(np.asarray(actual, dtype=float), expected, rtol=1e-9, atol=1e-12))


def test_quality_views_give_the_figures_computed_independently(make_settings, running_sink):
    settings = make_settings(quality_top_k=K)
    rows = labelled_set()
    assert sum(r.truth is not None for r in rows) < len(rows)  # some are not labelled yet
    with running_sink(settings):
        labels = send(settings, rows)
        wait_for(
            lambda: (
                count(settings, "SELECT count() FROM predictions") == len(rows)
                and count(settings, "SELECT count() FROM labels_raw") == labels
            ),
            60,
            "predictions and labels stored",
        )
        for name, width in (("hourly", HOUR_MS), ("daily", DAY_MS)):
            expected = expected_windows(rows, width)
            actual = view(
                settings,
                "SELECT *, toUnixTimestamp(window_start) * 1000 AS start_ms "  # noqa: S608
                f"FROM quality_{name}",
            )
            assert len(actual) == len(expected), name
            for got in actual:
                want = expected[(got["model_version"], int(got["start_ms"]))]
                for column, value in want.items():
                    assert close(got[column], value), (name, got["window_start"], column)
        at_k = expected_at_k(rows)
        actual = view(settings, "SELECT *, toUnixTimestamp(day) * 1000 AS day_ms FROM quality_at_k")
        assert len(actual) == len(at_k)
        for got in actual:
            assert int(got["k"]) == K
            want = at_k[(got["model_version"], int(got["day_ms"]))]
            figures = (got["precision_at_k"], got["labelled_at_k"], got["card_precision_at_k"])
            assert close(figures, want), got["day"]
