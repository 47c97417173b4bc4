"""The pure batch transform of the workers: records in, predictions and dead letters out.

The records are a small class with the ``InputRecord`` methods: this tests a pure function of
its input, not a Kafka client.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.registry import FileModelStore, ModelMetadata
from models.train import TrainingConfig, train_model
from stream_app.bad_events import CATALOGUE
from stream_app.codecs.avro import AvroRecordCodec
from stream_app.codecs.factory import (
    avro_transactions,
    dead_letter_codec,
    prediction_codec,
    schema_registry,
    transaction_decoder,
)
from stream_app.codecs.json import JsonCodec
from stream_app.control.modelset import ModelSet
from stream_app.events import Transaction, TransactionBatch
from stream_app.features import compute_features
from stream_app.generator import TransactionGenerator
from stream_app.scoring.model import LoadedModel, load_model
from stream_app.scoring.pipeline import InputRecord, OutputRecord, ScoredBatch, ScoringPipeline
from stream_app.settings import Settings
from tests.unit.support import copy_schemas

INPUT_TOPIC = "transactions"
EVENTS = [g.event for g in itertools.islice(TransactionGenerator(seed=21), 400)]


@dataclass(frozen=True)
class FakeRecord:
    """A consumed record as the pipeline sees it (the InputRecord protocol, nothing more)."""

    _value: bytes | None
    _key: bytes | None
    _partition: int
    _offset: int
    _create_time: int = 1_767_225_600_000
    _topic: str = INPUT_TOPIC

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._create_time)


@dataclass(frozen=True)
class Kit:
    settings: Settings
    pipeline: ScoringPipeline
    champion: LoadedModel
    challenger: LoadedModel
    predictions: AvroRecordCodec
    dead_letters: AvroRecordCodec
    encoders: tuple[Any, ...]


@pytest.fixture(scope="module")
def kit(
    tmp_path_factory: pytest.TempPathFactory, trained_store: tuple[FileModelStore, ModelMetadata]
) -> Kit:
    store, _ = trained_store
    other = FileModelStore(tmp_path_factory.mktemp("challenger"))
    train_model(other, TrainingConfig(events=3000, num_trees=5, seed=2), promote=False)
    challenger = dataclasses.replace(load_model(other, "1"), version="7")
    settings = Settings(
        schemas_dir=copy_schemas(tmp_path_factory.mktemp("schemas")), worker_id="w-test"
    )
    registry = schema_registry(settings)
    predictions = prediction_codec(settings, registry)
    dead_letters = dead_letter_codec(settings, registry)
    pipeline = ScoringPipeline(
        decoder=transaction_decoder(settings, registry),
        predictions=predictions,
        dead_letters=dead_letters,
        topics=settings.topics,
        worker_id=settings.worker_id,
        max_payload_bytes=settings.max_message_bytes,
    )
    encoders = (JsonCodec(), avro_transactions(settings, registry))
    return Kit(
        settings, pipeline, load_model(store), challenger, predictions, dead_letters, encoders
    )


def header(record: OutputRecord, name: str) -> str | bytes | None:
    values = [v for k, v in record.headers if k == name]
    assert len(values) == 1, (name, record.headers)
    return values[0]


#: one input record: (partition, None for a valid event or the index of a bad case, avro?)
Spec = list[tuple[int, int | None, bool]]
specs = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.one_of(st.none(), st.integers(0, len(CATALOGUE) - 1)),
        st.booleans(),
    ),
    max_size=60,
)
Built = list[tuple[FakeRecord, Transaction | None]]


def build_records(kit: Kit, spec: Spec) -> Built:
    """Records as the spec says, each with the event it must decode to (``None``: refused)."""
    next_offset = dict.fromkeys(range(4), 100)
    records: Built = []
    for i, (partition, bad, avro) in enumerate(spec):
        event = EVENTS[i % len(EVENTS)]
        value = kit.encoders[avro].encode(event) if bad is None else CATALOGUE[bad].make(event)
        offset = next_offset[partition]
        next_offset[partition] += 1 + i % 3  # offsets may have gaps (compaction, transactions)
        record = FakeRecord(value, event.card_id.encode(), partition, offset, 1000 + i)
        records.append((record, event if bad is None else None))
    return records


def process(kit: Kit, built: Built, models: ModelSet) -> ScoredBatch:
    inputs: list[InputRecord] = [record for record, _ in built]  # FakeRecord fits the protocol
    return kit.pipeline.process(inputs, models)


def check(kit: Kit, built: Built, models: ModelSet, result: ScoredBatch) -> None:
    """Everything the batch must produce, computed independently of the pipeline."""
    topics = kit.settings.topics
    valid = [(record, event) for record, event in built if event is not None]
    bad = [record for record, event in built if event is None]
    predictions = [o for o in result.outputs if o.topic == topics.predictions]
    dead = [o for o in result.outputs if o.topic == topics.dead_letters]
    assert len(result.outputs) == len(predictions) + len(dead)
    assert (result.scored, result.dead_lettered) == (len(valid), len(bad))
    assert (len(predictions), len(dead)) == (len(valid), len(bad))

    champion, challenger = models.champion, models.challenger
    if valid:
        features = compute_features(TransactionBatch.from_transactions([e for _, e in valid]))
        scores = champion.predict(features).tolist()
        shadow = challenger.predict(features).tolist() if challenger else [None] * len(valid)
    for (record, event), score, shadow_score, output in zip(
        valid, scores if valid else [], shadow if valid else [], predictions, strict=True
    ):
        value = kit.predictions.decode(output.value)
        assert header(output, "model-version") == champion.version.encode()
        assert output.key == event.card_id.encode()
        assert (value["event_id"], value["card_id"]) == (event.event_id, event.card_id)
        assert value["event_time"] == event.event_time
        assert value["model_version"] == champion.version
        assert (value["source_partition"], value["source_offset"]) == (
            record.partition(),
            record.offset(),
        )
        assert value["input_create_time"] == record.timestamp()[1]
        assert value["worker_id"] == "w-test"
        assert value["score"] == score
        assert value["decision"] == ("decline" if score >= champion.threshold else "approve")
        assert value["challenger_version"] == (challenger.version if challenger else None)
        assert value["challenger_score"] == shadow_score

    for record, output in zip(bad, dead, strict=True):
        value = kit.dead_letters.decode(output.value)
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
        assert output.key == record.key() == value["source_key"]
        original = record.value() or b""
        limit = kit.settings.max_message_bytes
        assert value["payload"] == original[:limit]
        if len(original) > limit:
            assert "truncated" in value["detail"]

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
    check(kit, built, models, process(kit, built, models))


def test_every_catalogue_case_becomes_one_dead_letter_with_its_reason(kit: Kit) -> None:
    spec: Spec = [(i % 4, None, bool(i % 2)) for i in range(50)]
    spec += [(i % 4, index, False) for i, index in enumerate(range(len(CATALOGUE)))]
    built = build_records(kit, spec)
    models = ModelSet(kit.champion)
    result = process(kit, built, models)
    check(kit, built, models, result)
    dead = [o for o in result.outputs if o.topic == kit.settings.topics.dead_letters]
    assert [header(o, "reason") for o in dead] == [c.reason.encode() for c in CATALOGUE]


def test_empty_batch(kit: Kit) -> None:
    result = process(kit, [], ModelSet(kit.champion))
    assert (result.outputs, result.scored, result.dead_lettered, result.next_offsets) == (
        [],
        0,
        0,
        {},
    )


@pytest.mark.parametrize(("threshold", "decision"), [(0.0, "decline"), (1.01, "approve")])
def test_decisions_follow_the_champion_threshold(kit: Kit, threshold: float, decision: str) -> None:
    champion = dataclasses.replace(kit.champion, threshold=threshold)
    challenger = dataclasses.replace(kit.challenger, threshold=1.01 - threshold)
    built = build_records(kit, [(0, None, False)] * 100)
    outputs = process(kit, built, ModelSet(champion, challenger)).outputs
    assert len(outputs) == 100
    assert {kit.predictions.decode(o.value)["decision"] for o in outputs} == {decision}


def test_the_champion_model_separates_fraud_from_legit(kit: Kit) -> None:
    """The fixture's model is a real one: fraud scores higher than legit on fresh events."""
    generated = list(itertools.islice(TransactionGenerator(seed=99, time_scale=600), 5000))
    batch = TransactionBatch.from_transactions([g.event for g in generated])
    scores = kit.champion.predict(compute_features(batch))
    fraud = np.array([g.is_fraud for g in generated])
    assert scores[fraud].mean() > scores[~fraud].mean() + 0.2
