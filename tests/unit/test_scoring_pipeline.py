"""The batch transform of the workers: records in; predictions, dead letters and alerts out;
per-card state updated, its changed cards ready for the loop's next changelog checkpoint.

The records are a small class with the ``InputRecord`` methods: this tests a function of its
input and the card state, not a Kafka client. Each test starts a pipeline with an empty state,
so the expected velocity features are the training replay of the test's valid events (a card's
events always come from one partition, as with key = card id).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import sys
from collections import deque
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.fit import training_features
from models.loader import load_model
from models.registry import FileModelStore, ModelMetadata
from models.runtime import LightGBMRuntime
from models.train import TrainingConfig, train_model
from stream_app.alerts import RuleSet
from stream_app.control.modelset import ModelSet
from stream_app.devtools.bad_events import CATALOGUE
from stream_app.devtools.generator import TransactionGenerator
from stream_app.events import Transaction, TransactionBatch
from stream_app.features import EVENT_FEATURES, FEATURE_NAMES
from stream_app.kafka.records import InputRecord
from stream_app.scoring.pipeline import ScoredBatch, ScoringPipeline
from stream_app.scoring.records import OutputRecord
from stream_app.state import HOUR_SEPARATOR, VELOCITY_FEATURES, CardStore
from stream_app.timing import StageTimes
from tests.unit.conftest import (
    INPUT_TOPIC,
    WORKER_ID,
    FakeRecord,
    PipelineKit,
    checkpoint,
    partition_of,
)

PARTITIONS = 4
EVENTS = [g.event for g in itertools.islice(TransactionGenerator(seed=21), 400)]
#: each partition's events in generator order: what a consumer reads from it
BY_PARTITION = {
    p: [e for e in EVENTS if partition_of(e.card_id, PARTITIONS) == p] for p in range(PARTITIONS)
}


@dataclass(frozen=True)
class Kit:
    base: PipelineKit
    challenger: LightGBMRuntime

    @property
    def champion(self) -> LightGBMRuntime:
        return self.base.champion


@pytest.fixture(scope="module")
def kit(
    tmp_path_factory: pytest.TempPathFactory,
    pipeline_kit: PipelineKit,
    trained_store: tuple[FileModelStore, ModelMetadata],
) -> Kit:
    other = FileModelStore(tmp_path_factory.mktemp("challenger"))
    train_model(other, TrainingConfig(events=3000, num_trees=5, seed=2), promote=False)
    return Kit(pipeline_kit, dataclasses.replace(load_model(other, "1"), version="7"))


def header(record: OutputRecord, name: str) -> str | bytes | None:
    assert record.headers is not None
    values = [v for k, v in record.headers if k == name]
    assert len(values) == 1, (name, record.headers)
    return values[0]


def by_topic(kit: Kit, result: ScoredBatch) -> dict[str, list[OutputRecord]]:
    topics = kit.base.settings.topics
    names = (topics.predictions, topics.dead_letters, topics.alerts)
    return {name: [o for o in result.outputs if o.topic == name] for name in names}


#: one input record: (partition, None for a valid event or the index of a bad case, avro?)
Spec = list[tuple[int, int | None, bool]]
specs = st.lists(
    st.tuples(
        st.integers(0, PARTITIONS - 1),
        st.one_of(st.none(), st.integers(0, len(CATALOGUE) - 1)),
        st.booleans(),
    ),
    max_size=60,
)
Built = list[tuple[FakeRecord, Transaction | None]]


def build_records(kit: Kit, spec: Spec) -> Built:
    """Records as the spec says, each with the event it must decode to (``None``: refused).
    A record of partition p carries the next event of a card of p."""
    next_offset = dict.fromkeys(range(PARTITIONS), 100)
    taken = dict.fromkeys(range(PARTITIONS), 0)
    encoders = (kit.base.json, kit.base.avro)
    records: Built = []
    for i, (partition, bad, avro) in enumerate(spec):
        pool = BY_PARTITION[partition]
        event = pool[taken[partition] % len(pool)]
        taken[partition] += 1
        value = encoders[avro].encode(event) if bad is None else CATALOGUE[bad].make(event)
        key = event.card_id.encode() if bad is None else CATALOGUE[bad].key(event)
        offset = next_offset[partition]
        next_offset[partition] += 1 + i % 3  # offsets may have gaps (compaction, transactions)
        record = FakeRecord(value, key, partition, offset, event.event_time + i)
        records.append((record, event if bad is None else None))
    return records


def process(pipeline: ScoringPipeline, built: Built, models: ModelSet) -> ScoredBatch:
    inputs: list[InputRecord] = [record for record, _ in built]  # FakeRecord fits the protocol
    return pipeline.process(inputs, models)


def expected_alerts(
    events: list[Transaction], features: np.ndarray, scores: np.ndarray, cooldown_ms: int
) -> list[tuple[str, list[str]]]:
    """(event id, rules) of the alerts of a first batch under the default rules: rows where a
    rule fires, then one alert per card per cool-down, walked in batch order."""
    batch = TransactionBatch.from_transactions(events)
    columns = {"score": scores, "amount": batch.amount}
    columns |= {n: features[:, FEATURE_NAMES.index(n)] for n in VELOCITY_FEATURES}
    last_alert: dict[str, int] = {}
    alerts = []
    for row, names in RuleSet.default().evaluate(columns, batch.merchant_category):
        event = events[row]
        last = last_alert.get(event.card_id)
        if last is None or event.event_time - last >= cooldown_ms:
            last_alert[event.card_id] = event.event_time
            alerts.append((event.event_id, names))
    return alerts


def check(
    kit: Kit, built: Built, models: ModelSet, pipeline: ScoringPipeline, result: ScoredBatch
) -> None:
    """Everything the first batch of ``pipeline`` must produce, computed independently of the
    pipeline (velocity features by the training replay)."""
    settings = kit.base.settings
    topics = settings.topics
    valid = [(record, event) for record, event in built if event is not None]
    bad = [record for record, event in built if event is None]
    outputs = by_topic(kit, result)
    predictions, dead = outputs[topics.predictions], outputs[topics.dead_letters]
    alerts = outputs[topics.alerts]
    assert len(result.outputs) == sum(map(len, outputs.values()))
    assert (result.scored, result.dead_lettered) == (len(valid), len(bad))
    assert (len(predictions), len(dead)) == (len(valid), len(bad))

    champion, challenger = models.champion, models.challenger
    events = [e for _, e in valid]
    features = training_features(events)
    scores = champion.predict(features) if valid else np.empty(0)
    shadow: list[float | None] = [None] * len(valid)
    if challenger and valid:
        shadow = challenger.predict(features).tolist()
    for (record, event), score, shadow_score, output in zip(
        valid, scores.tolist(), shadow, predictions, strict=True
    ):
        value = kit.base.predictions.decode(output.value)
        assert header(output, "model-version") == champion.version.encode()
        assert output.key == event.card_id.encode()
        assert output.partition is None  # partitioned by key, like the input
        assert (value["event_id"], value["card_id"]) == (event.event_id, event.card_id)
        assert value["event_time"] == event.event_time
        assert value["model_version"] == champion.version
        assert (value["source_partition"], value["source_offset"]) == (
            record.partition(),
            record.offset(),
        )
        assert value["input_create_time"] == record.timestamp()[1]
        assert value["worker_id"] == WORKER_ID
        assert value["score"] == score
        assert value["decision"] == ("decline" if score >= champion.threshold else "approve")
        assert value["challenger_version"] == (challenger.version if challenger else None)
        assert value["challenger_score"] == shadow_score

    for record, output in zip(bad, dead, strict=True):
        value = kit.base.dead_letters.decode(output.value)
        assert header(output, "reason") == value["reason"].encode()
        assert value["reason"] in {case.reason for case in CATALOGUE}
        assert value["detail"]
        assert header(output, "source-topic") == INPUT_TOPIC.encode()
        assert header(output, "source-partition") == str(record.partition()).encode()
        assert header(output, "source-offset") == str(record.offset()).encode()
        assert (value["source_topic"], value["source_partition"], value["source_offset"]) == (
            INPUT_TOPIC,
            record.partition(),
            record.offset(),
        )
        key = record.key() or b""
        assert output.key == value["source_key"] == key[: settings.max_key_bytes]
        original, kept = record.value() or b"", value["payload"]
        assert kept == original[: len(kept)]
        cut = dict(output.headers or []).get("truncated")
        assert (cut is not None) == (len(kept) < len(original) or output.key != record.key())
        assert (cut is not None) == ("[truncated " in value["detail"])
        headers = sum(len(k) + len(v or b"") for k, v in output.headers or [])
        assert (
            len(output.key or b"") + len(output.value) + headers <= settings.dead_letter_max_bytes
        )

    # alerts: the default rules and cool-down over the same features and scores
    cooldown_ms = int(settings.alert_cooldown_s * 1000)
    expected = expected_alerts(events, features, scores, cooldown_ms)
    assert result.alerts == len(alerts) == len(expected)
    score_of = {e.event_id: s for e, s in zip(events, scores.tolist(), strict=True)}
    for output, (event_id, names) in zip(alerts, expected, strict=True):
        value = kit.base.alerts.decode(output.value)
        assert (value["event_id"], value["rules"]) == (event_id, names)
        assert output.key == value["card_id"].encode()
        assert (value["score"], value["model_version"]) == (score_of[event_id], champion.version)

    # card state: the next checkpoint writes each card scored, in its input partition
    cards: dict[int, dict[str, int]] = {}
    for record, event in valid:
        per_card = cards.setdefault(record.partition() or 0, {})
        per_card[event.card_id] = per_card.get(event.card_id, 0) + 1
    changelog = checkpoint(pipeline.store)
    assert [(p, key) for p, key, _ in changelog if HOUR_SEPARATOR not in key] == [
        (p, card.encode()) for p in sorted(cards) for card in cards[p]
    ]
    restored = CardStore()
    for partition in cards:
        restored.restore(partition, [(k, v) for p, k, v in changelog if p == partition])
        for card, count in cards[partition].items():
            state = restored.card(partition, card)
            assert state == pipeline.store.card(partition, card)
            assert state.amount_count == count

    expected_offsets: dict[tuple[str, int], int] = {}
    for record, _ in built:
        key = (INPUT_TOPIC, record.partition() or 0)
        expected_offsets[key] = max(expected_offsets.get(key, 0), (record.offset() or 0) + 1)
    assert result.next_offsets == expected_offsets


@settings(deadline=None, max_examples=40)
@given(spec=specs, with_challenger=st.booleans())
def test_process_any_mix_of_records(kit: Kit, spec: Spec, with_challenger: bool) -> None:
    models = ModelSet(kit.champion, kit.challenger if with_challenger else None)
    built = build_records(kit, spec)
    pipeline = kit.base.pipeline()
    check(kit, built, models, pipeline, process(pipeline, built, models))


def test_every_catalogue_case_becomes_one_dead_letter_with_its_reason(kit: Kit) -> None:
    spec: Spec = [(i % PARTITIONS, None, bool(i % 2)) for i in range(50)]
    spec += [(i % PARTITIONS, index, False) for i, index in enumerate(range(len(CATALOGUE)))]
    built = build_records(kit, spec)
    models = ModelSet(kit.champion)
    pipeline = kit.base.pipeline()
    result = process(pipeline, built, models)
    check(kit, built, models, pipeline, result)
    dead = by_topic(kit, result)[kit.base.settings.topics.dead_letters]
    assert [header(o, "reason") for o in dead] == [c.reason.encode() for c in CATALOGUE]


def test_a_batch_of_dead_letters_only_changes_no_state(kit: Kit) -> None:
    built = build_records(kit, [(1, 0, False), (2, 1, False)])
    pipeline = kit.base.pipeline()
    result = process(pipeline, built, ModelSet(kit.champion))
    check(kit, built, ModelSet(kit.champion), pipeline, result)
    assert pipeline.store.assigned() == []
    assert checkpoint(pipeline.store) == []


def test_empty_batch(kit: Kit) -> None:
    result = process(kit.base.pipeline(), [], ModelSet(kit.champion))
    assert (
        result.outputs,
        result.scored,
        result.dead_lettered,
        result.alerts,
        result.next_offsets,
    ) == ([], 0, 0, 0, {})


@pytest.mark.parametrize(("threshold", "decision"), [(0.0, "decline"), (1.01, "approve")])
def test_decisions_follow_the_champion_threshold(kit: Kit, threshold: float, decision: str) -> None:
    champion = dataclasses.replace(kit.champion, threshold=threshold)
    challenger = dataclasses.replace(kit.challenger, threshold=1.01 - threshold)
    built = build_records(kit, [(0, None, False)] * 100)
    result = process(kit.base.pipeline(), built, ModelSet(champion, challenger))
    predictions = by_topic(kit, result)[kit.base.settings.topics.predictions]
    assert len(predictions) == 100
    assert {kit.base.predictions.decode(o.value)["decision"] for o in predictions} == {decision}


def test_the_champion_model_separates_fraud_from_legit(kit: Kit) -> None:
    """The fixture's model is a real one: fraud scores higher than legit on fresh events."""
    generated = list(itertools.islice(TransactionGenerator(seed=99, time_scale=600), 5000))
    scores = kit.champion.predict(training_features([g.event for g in generated]))
    fraud = np.array([g.is_fraud for g in generated])
    assert scores[fraud].mean() > scores[~fraud].mean() + 0.2


# --- served (batches, partitions, state) vs trained (replay) ---------------------------------


def consumption_batches(records: list[InputRecord], rng: random.Random) -> list[list[InputRecord]]:
    """The records as a consumer's batches: each batch takes the next 0-150 records of every
    partition (offset order within a partition) and interleaves them at random, so partitions
    progress at different paces in event time."""
    by_partition: dict[int, deque[InputRecord]] = {}
    for record in records:
        by_partition.setdefault(record.partition() or 0, deque()).append(record)
    batches = []
    while any(by_partition.values()):
        chunks = [
            deque(queue.popleft() for _ in range(min(len(queue), rng.randint(0, 150))))
            for queue in by_partition.values()
        ]
        labels = [i for i, chunk in enumerate(chunks) for _ in chunk]
        rng.shuffle(labels)
        if labels:
            batches.append([chunks[i].popleft() for i in labels])
    return batches


def test_served_features_equal_the_replayed_training_features(
    kit: Kit, feature_spy: list[np.ndarray]
) -> None:
    """The issue's promise: the vectors the workers score equal the ones training computes by
    replaying the history, whatever the batching, partitions and wire formats."""
    generator = TransactionGenerator(seed=33, cards=200, time_scale=600)
    events = [g.event for g in itertools.islice(generator, 3000)]
    records = kit.base.records(events)  # JSON and Avro alternate; key = card id
    position = {(r.partition(), r.offset()): i for i, r in enumerate(records)}
    batches = consumption_batches(records, random.Random(4))
    assert len(batches) > 10
    assert all(len({r.partition() for r in batch}) > 1 for batch in batches[:5])

    pipeline = kit.base.pipeline()
    models = ModelSet(kit.champion)
    served = np.full((len(events), len(FEATURE_NAMES)), -1.0)
    served_scores = np.full(len(events), -1.0)
    for number, batch in enumerate(batches):
        result = pipeline.process(batch, models)
        assert result.scored == len(batch)
        assert len(feature_spy) == number + 1
        rows = [position[(r.partition(), r.offset())] for r in batch]
        served[rows] = feature_spy[-1]
        predictions = by_topic(kit, result)[kit.base.settings.topics.predictions]
        served_scores[rows] = [kit.base.predictions.decode(o.value)["score"] for o in predictions]
    assert sorted(
        itertools.chain.from_iterable(
            [position[(r.partition(), r.offset())] for r in batch] for batch in batches
        )
    ) == list(range(len(events)))

    trained = training_features(events)  # models/train.py's own code, production order
    velocity = trained[:, len(EVENT_FEATURES) :]
    assert velocity[:, VELOCITY_FEATURES.index("count_1m")].max() >= 4, "card-testing bursts"
    assert velocity[:, VELOCITY_FEATURES.index("count_24h")].max() > 10, "cards with history"
    assert np.array_equal(served, trained, equal_nan=True)
    assert np.array_equal(served_scores, kit.champion.predict(trained))


class HoldersAtLaps(StageTimes):
    """A stopwatch noting, at each lap, the references held to each of ``events``."""

    def __init__(self, events: list[Transaction]) -> None:
        super().__init__()
        self._events = events
        self.holders: dict[str, list[int]] = {}

    def lap(self, stage: str) -> None:
        super().lap(stage)
        self.holders[stage] = [sys.getrefcount(e) for e in self._events]


def test_the_decoded_events_are_freed_in_the_pipelines_last_lap(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Freeing a batch's events is timed as the pipeline's ``release``, not the stage after."""
    decoder, decoded = kit.base.decoder, []
    decode = decoder.decode

    def recording(value: bytes) -> Transaction:
        decoded.append(decode(value))
        return decoded[-1]

    monkeypatch.setattr(decoder, "decode", recording)
    built = build_records(kit, [(i % PARTITIONS, None, False) for i in range(50)])
    times = HoldersAtLaps(decoded)
    result = kit.base.pipeline().process([r for r, _ in built], ModelSet(kit.champion), times)
    assert result.scored == len(decoded) == 50
    freed = [sys.getrefcount(e) for e in decoded]  # the test's own references only
    assert list(times.holders)[-2:] == ["alerts", "release"]
    still_held = [h > f for h, f in zip(times.holders["release"], freed, strict=True)]
    assert sum(still_held) <= 1  # the decoding loop's variable may hold the last one
