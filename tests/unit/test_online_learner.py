"""The online learner without a broker: the worker's feature tap, the learner's score-then-learn
order, its waiting rooms, and its checkpoint."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from models.online import KINDS, OnlineModel
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.errors import ModelError
from stream_app.features import FEATURE_NAMES
from stream_app.online.checkpoint import load_state, save_state
from stream_app.online.learner import LearnerState
from stream_app.scoring import feature_tap
from stream_app.scoring.feature_tap import FeatureTap
from stream_app.scoring.observers import ScoredEvents
from stream_app.settings import Settings

COLUMNS = len(FEATURE_NAMES)


def scored(n: int, partitions: list[int], seed: int = 0) -> ScoredEvents:
    rng = np.random.default_rng(seed)
    ids = [f"e{seed}-{i}" for i in range(n)]
    return ScoredEvents(
        event_id=ids,
        card_id=[f"c{i % 7}" for i in range(n)],
        event_time=np.arange(n, dtype=np.int64) + 1_000,
        partition=partitions,
        offset=list(range(100, 100 + n)),
        features=rng.normal(size=(n, COLUMNS)),
        score=rng.random(n),
        decision=["approve"] * n,
        model_version="1",
        challenger_score=None,
        challenger_version=None,
    )


def test_the_tap_writes_each_partitions_vectors_to_its_partition_in_chunks(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(feature_tap, "CHUNK_EVENTS", 3)
    codec = topic_codec(settings, schema_registry(settings), "scored_features")
    events = scored(8, [0, 1, 1, 0, 1, 1, 1, 0])
    records = FeatureTap(codec, "sf").observe(events)
    assert [(r.topic, r.partition) for r in records] == [("sf", 0), ("sf", 1), ("sf", 1)]
    values = [codec.decode(r.value) for r in records]
    assert [v["event_id"] for v in values] == [
        ["e0-0", "e0-3", "e0-7"], ["e0-1", "e0-2", "e0-4"], ["e0-5", "e0-6"]
    ]  # fmt: skip
    second = values[2]
    matrix = np.frombuffer(second["features"], dtype="<f4").reshape(-1, COLUMNS)
    np.testing.assert_array_equal(matrix, events.features[[5, 6]].astype(np.float32))
    assert second["input_offset"] == [105, 106] and second["input_partition"] == 1
    assert second["feature_names"] == list(FEATURE_NAMES)


def features_value(events: ScoredEvents) -> dict[str, object]:
    return {
        "feature_names": list(FEATURE_NAMES),
        "event_id": events.event_id,
        "features": events.features.astype("<f4").tobytes(),
    }


def test_each_event_is_scored_before_its_label_is_learnt_whichever_comes_first():
    events = scored(4, [0] * 4)
    state = LearnerState(OnlineModel("logistic", FEATURE_NAMES), capacity=10)
    state.on_label("e0-0", True)  # before its vector: waits
    assert state.stats.learned == 0 and list(state.labels) == ["e0-0"]
    shadow = state.on_features(features_value(events), threshold=0.5)
    assert shadow is not None and len(shadow.scores) == 4
    # a fresh model scored every event, then learnt the waiting label
    assert state.stats.learned == 1 and not state.labels
    assert list(state.vectors) == ["e0-1", "e0-2", "e0-3"]
    state.on_label("e0-2", False)
    assert state.stats.learned == 2 and list(state.vectors) == ["e0-1", "e0-3"]
    state.on_label("e0-2", True)  # the other source's label: its vector is gone, it waits
    assert state.stats.learned == 2 and list(state.labels) == ["e0-2"]


def test_full_waiting_rooms_let_the_oldest_go_and_other_features_are_skipped():
    state = LearnerState(OnlineModel("logistic", FEATURE_NAMES), capacity=2)
    state.on_features(features_value(scored(3, [0] * 3)), threshold=0.5)
    assert list(state.vectors) == ["e0-1", "e0-2"] and state.stats.expired == 1
    other = features_value(scored(2, [0] * 2, seed=1)) | {"feature_names": ["x"] * COLUMNS}
    assert state.on_features(other, threshold=0.5) is None
    assert state.stats.skipped_batches == 1 and state.stats.scored == 3


def test_a_record_whose_columns_do_not_add_up_is_skipped_not_raised():
    """A scored-features record that decodes but whose matrix or id list is cut would stop the
    learner on every restart (its offset never moves past it)."""
    state = LearnerState(OnlineModel("logistic", FEATURE_NAMES), capacity=10)
    good = features_value(scored(3, [0] * 3))
    for bad in (
        good | {"features": good["features"][:-4]},  # type: ignore[index]
        good | {"event_id": ["e0-0"]},
        good | {"card_id": ["c"]},
        # ids no worker writes: their shadow predictions were larger than the producer takes
        good | {"event_id": ["e" * 1_000_000, "e1", "e2"]},
        good | {"card_id": ["c0", "c" * 129, "c2"]},
    ):
        assert state.on_features(bad, threshold=0.5) is None
    assert state.stats.skipped_batches == 5 and state.stats.scored == 0


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_learns_to_rank_a_separable_signal(kind: str):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400 if kind == "forest" else 800, COLUMNS))  # the forest is slow
    y = x[:, 0] > 1.0
    model = OnlineModel(kind, FEATURE_NAMES)
    model.learn(x, y.tolist())
    test = rng.normal(size=(200, COLUMNS))
    scores = model.predict(test)
    positive, negative = scores[test[:, 0] > 1.5], scores[test[:, 0] < 0.5]
    assert positive.mean() > negative.mean() + 0.3
    assert model.version == f"online-{kind}"


def test_an_unknown_kind_is_refused():
    with pytest.raises(ModelError, match="one of logistic"):
        OnlineModel("svm", FEATURE_NAMES)


def test_a_checkpoint_restores_the_same_scores_offsets_and_waiting_rooms(tmp_path: Path):
    state = LearnerState(OnlineModel("logistic", FEATURE_NAMES), capacity=100)
    events = scored(50, [0] * 50)
    state.on_features(features_value(events), threshold=0.5)
    for i in range(0, 50, 2):
        state.on_label(f"e0-{i}", i % 4 == 0)
    state.offsets[("sf", 0)] = 7
    assert load_state(tmp_path) is None
    save_state(state, tmp_path)
    restored = load_state(tmp_path)
    assert restored is not None
    assert restored.offsets == {("sf", 0): 7} and restored.stats == state.stats
    assert list(restored.vectors) == list(state.vectors)
    later = features_value(scored(20, [0] * 20, seed=5))
    a, b = state.on_features(later, 0.5), restored.on_features(later, 0.5)
    assert a is not None and b is not None
    np.testing.assert_array_equal(a.scores, b.scores)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a pickle", pickle.dumps({"a": "dict"}), b"TRUNCATED"],
    ids=["empty", "garbage", "another-object", "truncated"],
)
def test_a_checkpoint_that_cannot_be_read_is_set_aside_and_the_learner_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
):
    if content == b"TRUNCATED":
        save_state(LearnerState(OnlineModel("logistic", FEATURE_NAMES), capacity=10), tmp_path)
        content = (tmp_path / "learner.pickle").read_bytes()[:-40]
    (tmp_path / "learner.pickle").write_bytes(content)
    assert load_state(tmp_path) is None  # not an error at every start: afresh
    assert not (tmp_path / "learner.pickle").exists()
    assert (tmp_path / "learner.pickle.unreadable").read_bytes() == content  # kept to look at
    assert "cannot be read" in caplog.text and "starting afresh" in caplog.text
