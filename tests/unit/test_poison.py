"""The poison-pill policy: a record that makes any stage raise is isolated and dead-lettered
after a bounded number of attempts; the rest of its batch is scored."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

import stream_app.scoring.alerting
import stream_app.scoring.pipeline
from stream_app.control.modelset import ModelSet
from stream_app.devtools.generator import TransactionGenerator
from stream_app.events import TransactionBatch
from stream_app.scoring.poison import PoisonGuard
from stream_app.timing import StageTimes
from tests.unit.conftest import PipelineKit

EVENTS = [g.event for g in itertools.islice(TransactionGenerator(seed=5), 40)]
POISON = EVENTS[23].event_id


#: stages broken on purpose through a seam: a module's function the pipeline calls per batch
STAGES = {
    "features": (stream_app.scoring.pipeline, "compute_features"),
    "rules": (stream_app.scoring.alerting, "rule_columns"),
}


def poisoned(
    monkeypatch: pytest.MonkeyPatch, poison: Callable[[str], bool], stage: str = "features"
) -> list[int]:
    """Make ``stage`` raise for a batch holding an event ``poison`` picks; returns the sizes of
    the batches it raised for."""
    raised: list[int] = []
    module, name = STAGES[stage]
    original = getattr(module, name)

    def broken(batch: TransactionBatch, *args: Any) -> Any:
        if any(poison(event_id) for event_id in batch.event_id):
            raised.append(len(batch.event_id))
            raise RuntimeError(f"{stage} bug " + "x" * 5000)
        return original(batch, *args)

    monkeypatch.setattr(module, name, broken)
    return raised


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_the_record_that_raises_is_dead_lettered_and_the_rest_scored(
    pipeline_kit: PipelineKit, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    raised = poisoned(monkeypatch, lambda event_id: event_id == POISON, stage)
    guard = PoisonGuard(pipeline_kit.pipeline(), max_attempts=3)
    records = pipeline_kit.records(EVENTS)
    result = guard.process(records, ModelSet(pipeline_kit.champion), StageTimes())

    assert (result.scored, result.dead_lettered, guard.poisoned) == (len(EVENTS) - 1, 1, 1)
    assert raised.count(1) == 3, "alone, the record was tried exactly max_attempts times"
    topics = pipeline_kit.settings.topics
    dead = [o for o in result.outputs if o.topic == topics.dead_letters]
    value = pipeline_kit.dead_letters.decode(dead[0].value)
    culprit = records[23]
    assert value["reason"] == "unexpected_error"
    assert value["detail"].startswith(f"RuntimeError: {stage} bug xxx")
    assert len(value["detail"]) <= 1000
    assert (value["source_partition"], value["source_offset"]) == (
        culprit.partition(),
        culprit.offset(),
    )
    assert value["payload"] == culprit.value()
    predicted = [o for o in result.outputs if o.topic == topics.predictions]
    assert len(predicted) == len(EVENTS) - 1
    expected_offsets: dict[tuple[str, int], int] = {}
    for record in records:
        expected_offsets[(record.topic() or "", record.partition() or 0)] = (
            record.offset() or 0
        ) + 1
    assert result.next_offsets == expected_offsets


def test_a_transient_failure_loses_nothing(
    pipeline_kit: PipelineKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = iter([True, True])  # the batch, then the half holding the record; then it passes
    raised = poisoned(monkeypatch, lambda event_id: event_id == POISON and next(failures, False))
    guard = PoisonGuard(pipeline_kit.pipeline(), max_attempts=3)
    result = guard.process(
        pipeline_kit.records(EVENTS), ModelSet(pipeline_kit.champion), StageTimes()
    )
    assert (result.scored, result.dead_lettered, guard.poisoned) == (len(EVENTS), 0, 0)
    assert raised == [len(EVENTS), len(EVENTS) // 2]


def test_a_failure_of_every_record_is_raised_not_dead_lettered(
    pipeline_kit: PipelineKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    poisoned(monkeypatch, lambda _: True)
    guard = PoisonGuard(pipeline_kit.pipeline(), max_attempts=2)
    with pytest.raises(RuntimeError, match="features bug"):
        guard.process(
            pipeline_kit.records(EVENTS[:6]), ModelSet(pipeline_kit.champion), StageTimes()
        )
