"""The drift observer: detections as drift-events records, versions without a reference left
alone, and monitors that continue from the card-state changelog."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.registry import FileModelStore
from monitors.reference import training_reference
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.scoring.drift import MONITORS_KEY, WARMUP_KEY, DriftObserver
from stream_app.scoring.observers import ScoredEvents
from stream_app.settings import Settings
from stream_app.state import CardStore

NAMES = ["amount", "channel"]


def batch(version: str, partition: int, start: int, shift: float, n: int = 500) -> ScoredEvents:
    rng = np.random.default_rng(start)
    features = np.column_stack([rng.normal(shift, 1.0, n), rng.integers(0, 3, n)])
    scores = 1 / (1 + np.exp(-rng.normal(shift - 3.0, 1.0, n)))
    cards = [f"c{i}" for i in range(n)]
    return ScoredEvents(
        event_id=cards,
        card_id=cards,
        event_time=np.arange(start, start + n, dtype=np.int64),
        partition=[partition] * n,
        offset=list(range(start, start + n)),
        features=features,
        score=scores,
        decision=["approve"] * n,
        model_version=version,
        challenger_score=None,
        challenger_version=None,
    )


def monitored_store(model_dir: Path) -> FileModelStore:
    """Version 1 without a training reference (registered before the monitors), 2 with one."""
    store = FileModelStore(model_dir)
    reference = batch("-", 0, 10_000_000, 0.0, n=20_000)
    common = {"feature_set_version": "t", "feature_names": NAMES, "threshold": 0.5}
    store.register("model 1", **common, training={}, evaluation={})
    store.register(
        "model 2",
        **common,
        training={},
        evaluation={},
        monitoring=training_reference(reference.score, reference.features, NAMES),
    )
    return store


@pytest.fixture
def kit(tmp_path: Path) -> tuple[DriftObserver, CardStore, Settings]:
    settings = Settings(model_dir=tmp_path / "models", schema_registry_dir=tmp_path / "registry")
    store = monitored_store(settings.model_dir)
    cards = CardStore()
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    return DriftObserver(store, cards, codec, "drift-events", "w1"), cards, settings


@pytest.fixture
def settings_codec(kit):
    _, _, settings = kit
    return topic_codec(settings, schema_registry(settings), "drift_events")


def test_a_shift_is_detected_after_it_and_not_before(kit):
    observer, _, settings = kit
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    before = [r for i in range(10) for r in observer.observe(batch("2", 1, i * 500, 0.0))]
    after = [r for i in range(10, 14) for r in observer.observe(batch("2", 1, i * 500, 0.5))]
    assert before == []
    rows = [codec.decode(r.value) for r in after]
    assert {(row["signal"], row["feature"]) for row in rows} >= {
        ("score", ""),
        ("feature", "amount"),
    }
    assert all(row["input_offset"] >= 5_000 and row["statistic"] > row["threshold"] for row in rows)
    assert {(row["model_version"], row["input_partition"], row["worker_id"]) for row in rows} == {
        ("2", 1, "w1")
    }
    assert {r.key for r in after} == {b"2"}


def test_a_version_without_reference_is_not_monitored_and_logged_once(kit, caplog):
    observer, _, _ = kit
    with caplog.at_level(logging.WARNING):
        records = [r for i in range(4) for r in observer.observe(batch("1", 0, i * 500, 3.0))]
    assert records == []
    assert sum("no training reference" in m for m in caplog.messages) == 1


def test_monitors_continue_from_the_changelog_after_a_restore(kit):
    observer, cards, _ = kit
    observer.observe(batch("2", 0, 0, 0.0))
    saved = observer.monitors(0)["2"].save()
    cards.partition(0).velocity_features(["c"], ["m"], [1.0], [0])  # the batch's cards (pipeline)
    cards.cut()
    records = [(key, value) for _, key, value in cards.take_cut()]
    observer.observe(batch("2", 0, 500, 0.0))  # after the checkpoint: not in the changelog
    cards.drop(0)
    cards.restore(0, records)  # as on assignment
    assert cards.partition(0).side_state(b"\x00drift-monitors") is not None
    assert observer.monitors(0)["2"].save() == saved  # the restored ones, not fresh ones


@pytest.mark.parametrize(
    "damage",
    [
        lambda state: state["score"].pop("drift"),
        lambda state: state["features"]["amount"].update(window=0),
        lambda state: state["features"]["amount"].update(window=float("inf")),
        lambda state: state["features"]["amount"].update(counts=[10**9] * 10),
    ],
    ids=["no flag", "empty window", "infinite window", "counts past the window"],
)
def test_a_damaged_checkpoint_is_not_restored_and_the_monitors_start_afresh(kit, caplog, damage):
    observer, cards, _ = kit
    observer.observe(batch("2", 0, 0, 0.0))
    cards.partition(0).velocity_features(["c"], ["m"], [1.0], [0])
    cards.cut()
    records = {key: value for _, key, value in cards.take_cut()}
    document = json.loads(records[MONITORS_KEY])
    damage(document["2"])
    records[MONITORS_KEY] = json.dumps(document).encode()
    cards.drop(0)
    cards.restore(0, list(records.items()))
    with caplog.at_level(logging.WARNING):
        assert observer.monitors(0) == {}
    assert any("drift monitors not restored" in m for m in caplog.messages)
    assert observer.observe(batch("2", 0, 500, 0.0)) == []  # and the partition goes on


def interleaved(first: ScoredEvents, second: ScoredEvents, seed: int) -> ScoredEvents:
    """The rows of two batches mixed at random, each batch's rows kept in their order."""
    both = first.joined(second)
    take = np.random.default_rng(seed).permutation([0] * len(first) + [1] * len(second))
    rows = np.empty(len(take), dtype=np.int64)
    rows[take == 0] = np.arange(len(first))
    rows[take == 1] = len(first) + np.arange(len(second))
    return both.take(rows)


def test_a_batch_of_several_partitions_is_observed_as_each_partition_alone(kit):
    """All partitions' monitors are updated in one pass, also beside a partition whose restored
    monitors watch other features: the records and states of one batch per partition."""
    observer, cards, settings = kit
    alone = DriftObserver(observer._models, CardStore(), observer._codec, "drift-events", "w1")
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    observer.observe(batch("2", 0, 0, 0.0, n=10))
    state = json.loads(_encode_of(observer, 0))
    del state["2"]["features"]["channel"]  # as a changelog written with other monitored features
    for store in (cards, alone._cards):
        store.partition(2).restore([(MONITORS_KEY, json.dumps(state).encode())])
    mixed, split = [], []
    for turn in range(14):
        shift = 0.5 * (turn >= 10)
        parts = [batch("2", p, 1_000 * turn, shift + 0.1 * p, n=333 + p) for p in (1, 2)]
        mixed += observer.observe(interleaved(*parts, seed=turn))
        split += [record for part in parts for record in alone.observe(part)]
    assert len(split) >= 4  # both partitions detect the shift, by score and feature
    assert {codec.decode(r.value)["input_partition"] for r in split} == {1, 2}
    assert [codec.decode(r.value) | {"detected_time": 0} for r in mixed] == [
        codec.decode(r.value) | {"detected_time": 0} for r in split
    ]
    assert [_encode_of(observer, p) for p in (1, 2)] == [_encode_of(alone, p) for p in (1, 2)]
    assert list(observer.monitors(2)["2"].features) == ["amount"]


def _encode_of(observer: DriftObserver, partition: int) -> bytes:
    return json.dumps({v: m.save() for v, m in observer.monitors(partition).items()}).encode()


def holding(observer: DriftObserver, cards: CardStore, update_rows: int) -> DriftObserver:
    """An observer like ``observer`` over ``cards`` that holds rows back until ``update_rows``."""
    return DriftObserver(
        observer._models, cards, observer._codec, "drift-events", "w1", update_rows=update_rows
    )


def decoded(settings: Settings, records) -> list[dict]:
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    rows = [codec.decode(r.value) | {"detected_time": 0} for r in records]
    return sorted(
        rows, key=lambda row: (row["input_partition"], row["input_offset"], row["feature"])
    )


def test_rows_held_back_give_the_records_and_states_of_an_update_per_batch(kit):
    """Small batches of two partitions held until 1,200 rows wait: the monitors read the same
    rows in the same order per partition, so the same detections (same events) and states."""
    every, _, settings = kit
    held = holding(every, CardStore(), update_rows=1_200)
    by_batch, by_pass = [], []
    rng = np.random.default_rng(11)
    for turn in range(60):
        shift = 0.6 * (turn >= 40)
        n = int(rng.integers(20, 300))
        parts = [batch("2", p, 1_000 * turn, shift + 0.1 * p, n=n + p) for p in (1, 2)]
        events = interleaved(*parts, seed=turn)
        by_batch += every.observe(events)
        by_pass += held.observe(events)
    by_pass += held.flush()
    assert len(by_batch) >= 4  # both signals detect the shift
    # the same events; Page-Hinkley's sums over other chunks differ in rounding only
    assert decoded(settings, by_pass) == [
        row | {"statistic": pytest.approx(row["statistic"], rel=1e-12)}
        for row in decoded(settings, by_batch)
    ]
    for p in (1, 2):
        assert leaves(json.loads(_encode_of(held, p))) == pytest.approx(
            leaves(json.loads(_encode_of(every, p))), rel=1e-12, nan_ok=True
        )
    assert held.flush() == []  # nothing held any more


def leaves(state: object) -> list[float]:
    """The numbers and flags of a saved state, in order (None, an infinity, as NaN)."""
    if isinstance(state, dict):
        return [x for key in sorted(state) for x in leaves(state[key])]
    if isinstance(state, list):
        return [x for item in state for x in leaves(item)]
    if isinstance(state, str):  # a monitor's kind: the layouts are equal
        return []
    return [float("nan") if state is None else float(state)]


def test_nothing_is_read_until_enough_rows_wait(kit):
    every, cards, _ = kit
    held = holding(every, cards, update_rows=1_000)
    assert held.observe(batch("2", 0, 0, 0.0, n=600)) == []
    assert held.monitors(0) == {}  # held back, not read
    held.observe(batch("2", 0, 600, 0.0, n=400))  # 1,000 rows wait: one pass
    assert held.monitors(0)["2"].save()["score"]["mean"][0] == 1_000


def test_a_model_swap_reads_the_old_versions_rows_first(kit):
    every, cards, _ = kit
    held = holding(every, cards, update_rows=10_000)
    held.observe(batch("2", 0, 0, 0.0, n=700))
    assert held.observe(batch("1", 0, 700, 0.0, n=50)) == []  # version 1: not monitored
    assert held.monitors(0)["2"].save()["score"]["mean"][0] == 700
    assert held.flush() == [] and held.monitors(0)["2"].save()["score"]["mean"][0] == 700


def test_rows_of_a_partition_lost_or_rebuilt_while_held_are_dropped_unread(kit):
    """Lost (its state dropped) or lost and assigned again (its state rebuilt from the
    changelog): its held rows will be scored again from the checkpoint, they are not read."""
    every, cards, _ = kit
    held = holding(every, cards, update_rows=10_000)
    held.observe(batch("2", 0, 0, 0.0, n=100))
    held.flush()  # partition 0 has monitors, checkpointed below
    cards.partition(0).velocity_features(["c"], ["m"], [1.0], [0])
    cards.cut()
    checkpoint = [(key, value) for _, key, value in cards.take_cut()]
    for p, start in ((0, 100), (1, 0), (2, 0)):
        held.observe(batch("2", p, start, 0.0, n=300))
    cards.drop(1)  # lost
    cards.drop(0)  # lost, then assigned again
    cards.restore(0, checkpoint)
    held.observe(batch("2", 0, 100, 0.0, n=50))  # read again from the checkpoint
    held.flush()
    assert cards.get(1) is None  # not brought back by the flush
    assert 1 not in held._partitions
    assert held.monitors(0)["2"].save()["score"]["mean"][0] == 100 + 50
    assert held.monitors(2)["2"].save()["score"]["mean"][0] == 300


#: the score warm-up of the tests below, in ms of event time (a batch's rows are 1 ms apart)
WARMUP_MS = 2_000


def warming(observer: DriftObserver, cards: CardStore) -> DriftObserver:
    """An observer like ``observer`` over ``cards`` whose score monitors warm up for
    :data:`WARMUP_MS`, reading every batch at once."""
    return DriftObserver(
        observer._models, cards, observer._codec, "drift-events", "w1", score_warmup_ms=WARMUP_MS
    )


def scores_shifted(events: ScoredEvents, shift: float) -> ScoredEvents:
    """``events`` with scores drawn afresh around log-odds ``shift - 3``, features unchanged."""
    rng = np.random.default_rng(len(events) + int(events.event_time[0]))
    return replace(events, score=1 / (1 + np.exp(-rng.normal(shift - 3.0, 1.0, len(events)))))


def read_by_score(observer: DriftObserver, partition: int) -> int:
    return int(observer.monitors(partition)["2"].save()["score"]["mean"][0])


def checkpoint(cards: CardStore, partition: int) -> list[tuple[bytes, bytes]]:
    """The changelog records of ``partition``'s next checkpoint (a card scored since the last)."""
    cards.partition(partition).velocity_features(["c"], ["m"], [1.0], [0])
    cards.cut()
    return [(key, value) for p, key, value in cards.take_cut() if p == partition]


def test_a_fresh_partitions_score_monitor_skips_the_rows_of_its_warm_up(kit, settings_codec):
    """A cold card state scores high and falls back over the warm-up (here a step down of the
    scores, which the score monitor alarms on if it reads it); the monitor reads from the first
    row after the warm-up, finds a real shift after it, and the feature monitors read it all."""
    every, cards, _ = kit
    observer = warming(every, cards)
    records = []
    for turn in range(12):  # 500 rows a turn, 1 ms apart: the warm-up is the first 4 turns
        high = 1.0 if turn < 4 else 0.0  # the cold state's scores
        shift = 0.6 if turn >= 9 else 0.0  # the real shift, scores and features
        events = scores_shifted(batch("2", 0, turn * 500, shift), high + shift)
        records += observer.observe(events)
        if turn == 8:
            assert records == []  # the fall at the warm-up's end is not read
            assert read_by_score(observer, 0) == 4_500 - WARMUP_MS
    rows = [settings_codec.decode(r.value) for r in records]
    score_offsets = [row["input_offset"] for row in rows if row["signal"] == "score"]
    assert score_offsets and min(score_offsets) >= 4_500, rows  # the real shift is found
    assert observer.warm_up(0).started_ms == 0 and observer.warm_up(0).warm
    amount = observer.monitors(0)["2"].features["amount"].save()
    assert sum(amount["counts"]) == 6_000 % amount["window"]  # every row, none skipped


def test_a_partition_restored_warm_is_not_held_back_again(kit):
    every, cards, _ = kit
    observer = warming(every, cards)
    for turn in range(5):
        observer.observe(batch("2", 0, turn * 500, 0.0))
    assert observer.warm_up(0).warm
    saved = checkpoint(cards, 0)
    restored_cards = CardStore()
    restored_cards.restore(0, saved)  # as on assignment, by the next owner
    restored = warming(every, restored_cards)
    restored.observe(batch("2", 0, 10_000, 0.0))  # within a warm-up of its first row
    assert read_by_score(restored, 0) == 2_500 - WARMUP_MS + 500
    # monitors checkpointed before the warm-up existed: warm too
    legacy = CardStore()
    legacy.restore(0, [(key, value) for key, value in saved if key != WARMUP_KEY])
    old = warming(every, legacy)
    old.observe(batch("2", 0, 10_000, 0.0))
    assert read_by_score(old, 0) == 2_500 - WARMUP_MS + 500


def test_the_warm_up_goes_on_from_its_checkpoint_after_a_restore(kit):
    every, cards, _ = kit
    observer = warming(every, cards)
    observer.observe(batch("2", 0, 0, 0.0, n=1_000))  # event times 0 to 999 ms: warming up
    assert read_by_score(observer, 0) == 0 and not observer.warm_up(0).warm
    saved = checkpoint(cards, 0)
    restored_cards = CardStore()
    restored_cards.restore(0, saved)
    restored = warming(every, restored_cards)
    assert restored.warm_up(0) == observer.warm_up(0)
    restored.observe(batch("2", 0, 1_000, 0.0, n=2_000))  # 1,000 to 2,999 ms
    assert read_by_score(restored, 0) == 1_000  # from 2,000 ms: the warm-up started at 0
    assert restored.warm_up(0).warm
    fresh = warming(every, CardStore())  # what a partition started empty does instead
    fresh.observe(batch("2", 0, 1_000, 0.0, n=2_000))
    assert read_by_score(fresh, 0) == 0
