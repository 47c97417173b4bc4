"""The per-batch observer seam: what a scored batch carries, and observers that fail."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
import pytest

from stream_app.control.modelset import ModelSet
from stream_app.devtools.bad_events import CATALOGUE
from stream_app.devtools.generator import TransactionGenerator
from stream_app.events import FloatArray
from stream_app.scoring.observers import Observers, ScoredEvents
from stream_app.scoring.poison import PoisonGuard
from stream_app.scoring.records import OutputRecord
from stream_app.timing import StageTimes
from tests.unit.conftest import FakeRecord, PipelineKit
from tests.unit.test_poison import poisoned

EVENTS = [g.event for g in itertools.islice(TransactionGenerator(seed=9), 120)]


def models(kit: PipelineKit) -> ModelSet:
    return ModelSet(kit.champion, dataclasses.replace(kit.champion, version="7"))


def test_a_batch_carries_every_scored_event_once_with_its_columns(
    pipeline_kit: PipelineKit, feature_spy: list[FloatArray]
) -> None:
    records = pipeline_kit.records(EVENTS)
    bad = FakeRecord(CATALOGUE[0].make(EVENTS[0]), b"card", 0, 10_000)
    result = pipeline_kit.pipeline().process(
        [*records[:50], bad, *records[50:]], models(pipeline_kit)
    )

    events = result.events
    assert events is not None and len(events) == len(EVENTS) == result.scored
    predictions = [
        pipeline_kit.predictions.decode(o.value)
        for o in result.outputs
        if o.topic == pipeline_kit.settings.topics.predictions
    ]
    assert events.event_id == [p["event_id"] for p in predictions]
    assert events.card_id == [p["card_id"] for p in predictions]
    assert events.event_time.tolist() == [p["event_time"] for p in predictions]
    assert events.partition == [p["source_partition"] for p in predictions]
    assert events.offset == [p["source_offset"] for p in predictions]
    assert events.score.tolist() == [p["score"] for p in predictions]
    assert events.decision == [p["decision"] for p in predictions]
    assert events.challenger_score is not None
    assert events.challenger_score.tolist() == [p["challenger_score"] for p in predictions]
    assert (events.model_version, events.challenger_version) == (
        pipeline_kit.champion.version, "7"
    )  # fmt: skip
    assert np.array_equal(events.features, feature_spy[0], equal_nan=True)


def test_a_batch_split_by_the_poison_policy_joins_its_scored_parts(
    pipeline_kit: PipelineKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = EVENTS[77].event_id
    poisoned(monkeypatch, lambda event_id: event_id == poison)
    guard = PoisonGuard(pipeline_kit.pipeline(), max_attempts=2)
    result = guard.process(pipeline_kit.records(EVENTS), models(pipeline_kit), StageTimes())

    events = result.events
    assert events is not None
    assert events.event_id == [e.event_id for e in EVENTS if e.event_id != poison]
    assert len(events.features) == len(events.score) == len(events.event_time) == len(events)
    assert events.challenger_score is not None and len(events.challenger_score) == len(events)


def test_nothing_scored_carries_no_events(pipeline_kit: PipelineKit) -> None:
    bad = FakeRecord(CATALOGUE[0].make(EVENTS[0]), b"card", 0, 0)
    assert pipeline_kit.pipeline().process([bad], models(pipeline_kit)).events is None


class Counting:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def observe(self, events: ScoredEvents) -> Sequence[OutputRecord]:
        self.seen.extend(events.event_id)
        return [OutputRecord("monitoring", None, str(len(events)).encode())]


class Broken:
    def observe(self, events: ScoredEvents) -> Sequence[OutputRecord]:
        raise ValueError("a monitor bug")


def test_an_observer_that_raises_is_counted_and_the_others_go_on(
    pipeline_kit: PipelineKit, caplog: pytest.LogCaptureFixture
) -> None:
    counting = Counting()
    observers = Observers([Broken(), counting])
    pipeline = pipeline_kit.pipeline()
    added = []
    for part in (EVENTS[:70], EVENTS[70:]):
        events = pipeline.process(pipeline_kit.records(part), models(pipeline_kit)).events
        assert events is not None
        added.extend(observers.observe(events))

    assert observers.failures == 2
    assert counting.seen == [e.event_id for e in EVENTS]
    assert [r.value for r in added] == [b"70", b"50"]
    assert "a monitor bug" in caplog.text and "Broken" in caplog.text
    assert not Observers() and Observers([counting])


class Holding(Counting):
    def flush(self) -> Sequence[OutputRecord]:
        return [OutputRecord("monitoring", None, b"held")]


class BrokenFlush(Counting):
    def flush(self) -> Sequence[OutputRecord]:
        raise ValueError("a flush bug")


def test_a_flush_asks_the_observers_that_hold_rows_back_and_counts_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    observers = Observers([Counting(), BrokenFlush(), Holding()])
    assert [r.value for r in observers.flush()] == [b"held"]
    assert observers.failures == 1 and "a flush bug" in caplog.text
    assert observers.produced["monitoring"] == 1
