"""A checkpoint written a chunk per turn commits its offsets only once all its state is out."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.kafka.config import consumer_config, producer_config
from stream_app.scoring.checkpoint import Checkpointer
from stream_app.scoring.drift import MONITORS_KEY, DriftObserver
from stream_app.scoring.outputs import Outputs
from stream_app.scoring.records import OutputRecord
from stream_app.settings import Settings
from stream_app.state import HOUR_SEPARATOR, CardStore, PartitionState
from tests.integration.conftest import committed_offsets, read_topic
from tests.unit.test_drift_observer import batch, leaves, monitored_store

pytestmark = pytest.mark.integration

CARDS = [f"card-{i}" for i in range(50)]
CHUNK = 8


@dataclass
class Kit:
    settings: Settings
    store: CardStore
    consumer: Consumer
    outputs: Outputs

    def checkpointer(
        self, interval_s: float, observer: DriftObserver | None = None
    ) -> Checkpointer:
        return Checkpointer(
            store=self.store,
            consumer=self.consumer,
            outputs=self.outputs,
            state_topic=self.settings.topics.card_state,
            interval_s=interval_s,
            chunk_cards=CHUNK,
            **({} if observer is None else {"before_cut": observer.flush}),
        )

    def drift_observer(self, model_dir: Path, store: CardStore, update_rows: int) -> DriftObserver:
        settings = self.settings
        codec = topic_codec(settings, schema_registry(settings), "drift_events")
        return DriftObserver(
            monitored_store(model_dir),
            store,
            codec,
            settings.topics.drift_events,
            "w1",
            update_rows=update_rows,
        )

    def score(self, cards: list[str], amount: float, time_ms: int) -> None:
        n = len(cards)
        self.store.partition(0).velocity_features(cards, ["m"] * n, [amount] * n, [time_ms] * n)

    def committed(self) -> int:
        topic = self.settings.topics.transactions
        (offset,) = committed_offsets(self.consumer, [TopicPartition(topic, 0)])
        return offset


@pytest.fixture
def kit(make_settings) -> Iterator[Kit]:
    settings = make_settings()
    kit = Kit(
        settings,
        CardStore(),
        Consumer(consumer_config(settings, settings.worker_group)),
        Outputs(producer_config(settings, **{"linger.ms": 1})),
    )
    kit.score(CARDS, 1.0, 1_000)
    try:
        yield kit
    finally:
        kit.outputs.flush()
        kit.consumer.close()


def test_offsets_are_committed_after_the_last_chunk_of_the_cut(kit):
    checkpoints = kit.checkpointer(interval_s=0.0)  # never waits for an idle producer: flushes
    topic = kit.settings.topics.transactions
    checkpoints.scored({(topic, 0): 100})
    turns = 0
    while not checkpoints.step():
        turns += 1
        if kit.store.cut_pending():  # chunks still to write: nothing committed yet
            assert kit.committed() < 0
        assert turns < 1000
    assert turns >= len(CARDS) // CHUNK  # one chunk per turn
    assert kit.committed() == 100
    # later batches: state and offsets at once, on revoke or stop
    kit.score(CARDS[:3], 2.0, 2_000)
    checkpoints.scored({(topic, 0): 130})
    checkpoints.complete()
    assert kit.committed() == 130
    state = read_topic(kit.settings, kit.settings.topics.card_state, 2 * (len(CARDS) + 3))
    heads = [m.key() for m in state if HOUR_SEPARATOR not in m.key()]
    assert sorted(heads) == sorted(c.encode() for c in CARDS + CARDS[:3])
    assert len(state) == 2 * len(heads)  # each with the one hour of event time it changed


def test_a_turn_that_scores_a_small_batch_writes_two_cards_per_event_of_it(kit):
    """So that writing a cut holds small batches up little; an idle turn writes a whole chunk."""
    checkpoints = kit.checkpointer(interval_s=0.0)
    checkpoints.scored({(kit.settings.topics.transactions, 0): 10})
    part = kit.store.partition(0)
    left = []
    for batch_events in (1, 3, 100, 0):  # the first turn cuts, then writes its chunk
        assert checkpoints.step(batch_events) is False
        left.append(part.cut_cards_left())
    assert left == [len(CARDS) - 2, len(CARDS) - 8, len(CARDS) - 16, len(CARDS) - 24]


def test_a_written_cut_is_committed_once_the_producer_is_idle_without_a_flush(kit):
    # an interval long enough that a delivery on a loaded machine (~1 s seen) stays well within it
    checkpoints = kit.checkpointer(interval_s=4.0)
    checkpoints.scored({(kit.settings.topics.transactions, 0): 50})
    time.sleep(4.05)  # the first cut is due an interval after start
    assert checkpoints.step() is False  # the cut, and its first chunk
    while kit.store.cut_pending():
        assert checkpoints.step() is False
    cut_written = time.monotonic()
    while kit.outputs.outstanding():  # the cut's records are in flight: the commit waits
        assert checkpoints.step() is False
        kit.outputs.producer.poll(0.01)
    assert checkpoints.step() is True
    assert time.monotonic() - cut_written < 4.0  # before the flush an interval would force
    assert kit.committed() == 50


def test_a_refused_delivery_is_settled_before_the_commit(kit):
    """Refused for good (a partition that does not exist), counted, and the commit goes on."""
    checkpoints = kit.checkpointer(interval_s=0.0)
    checkpoints.scored({(kit.settings.topics.transactions, 0): 100})
    kit.outputs.send([OutputRecord(kit.settings.topics.alerts, b"k", b"v", partition=99)])
    while not checkpoints.step():
        pass
    assert kit.outputs.counts.lost == 1
    assert kit.committed() == 100


def test_a_commit_refused_for_lost_membership_drops_the_cut_and_the_next_one_commits(kit):
    """The broker answers UNKNOWN_MEMBER_ID to a commit from a consumer that is not a member of
    its (active) group: what a worker sees after its session expired or the broker restarted."""
    topic = kit.settings.topics.transactions
    member = Consumer(consumer_config(kit.settings, kit.settings.worker_group))
    member.subscribe([topic])
    try:
        deadline = time.monotonic() + 60
        while not member.assignment() and time.monotonic() < deadline:
            member.consume(1, 0.2)
        assert member.assignment(), "the member never joined"
        checkpoints = kit.checkpointer(interval_s=0.0)
        checkpoints.scored({(topic, 0): 100})
        while not checkpoints.step():  # before the fix: KafkaException UNKNOWN_MEMBER_ID
            pass
        assert checkpoints.commits_dropped == 1
        assert kit.committed() < 0  # dropped: the partition's owner replays those records
    finally:
        member.close()  # the group is empty again: this consumer may commit
    checkpoints.scored({(topic, 0): 150})
    while not checkpoints.step():
        pass
    assert checkpoints.commits_dropped == 1
    assert kit.committed() == 150


def test_a_revoke_during_a_chunked_cut_commits_the_state_at_the_revoke(kit):
    """A cut partly written, a batch that changes cards of the cut, then a revoke (what
    ``ScoringLoop._on_revoke`` calls): the committed offsets and the last changelog record of
    every card are those at the revoke, for the partition's next owner to restore."""
    checkpoints = kit.checkpointer(interval_s=0.0)
    topic = kit.settings.topics.transactions
    checkpoints.scored({(topic, 0): 100})
    assert checkpoints.step() is False  # the cut, and its first chunk only
    assert kit.store.cut_pending()
    changed = CARDS[:3] + CARDS[-3:]  # written already, and still waiting in the cut
    kit.score(changed, 5.0, 2_000)
    checkpoints.scored({(topic, 0): 130})
    assert kit.committed() < 0  # nothing committed before the revoke
    checkpoints.complete()
    assert kit.committed() == 130
    # each card at the cut, then the changed ones again: a head and an hour record each time
    written = 2 * (len(CARDS) + len(changed))
    last: dict[bytes, bytes | None] = {}
    for message in read_topic(kit.settings, kit.settings.topics.card_state, written):
        last[message.key()] = message.value()  # one partition: in the order written
    restored = PartitionState()
    assert restored.restore(last.items()) == []
    assert all(restored.get(c) == kit.store.card(0, c) for c in CARDS)
    assert {kit.store.card(0, c).amounts[-1] for c in changed} == {5.0}


def test_a_cut_has_the_monitors_read_the_rows_held_back_and_their_detections_sent(kit, tmp_path):
    """The drift observer holds 7,000 rows (a shift in the last 2,000) when the checkpoint is
    cut: the state written with the cut's offsets has read all of them, as an observer updated
    at every batch has, and their detections are on the topic once the offsets are committed."""
    held = kit.drift_observer(tmp_path / "models", kit.store, update_rows=100_000)
    every = kit.drift_observer(tmp_path / "models", CardStore(), update_rows=1)
    expected = []
    for i in range(14):
        events = batch("2", 0, 500 * i, 0.5 * (i >= 10))
        assert held.observe(events) == []
        expected += every.observe(events)
    assert expected  # the shift is detected
    checkpoints = kit.checkpointer(interval_s=0.0, observer=held)
    topic = kit.settings.topics.transactions
    checkpoints.scored({(topic, 0): 7_000})
    while not checkpoints.step():
        pass
    assert kit.committed() == 7_000
    written = read_topic(kit.settings, kit.settings.topics.card_state, len(CARDS) + 1)
    (state,) = [json.loads(m.value()) for m in written if m.key() == MONITORS_KEY]
    # Page-Hinkley's sums over one pass and over a pass per batch differ in rounding only
    assert leaves(state) == pytest.approx(
        leaves({v: m.save() for v, m in every.monitors(0).items()}), rel=1e-12, nan_ok=True
    )
    sent = read_topic(kit.settings, kit.settings.topics.drift_events, len(expected), 10)
    assert detections(kit.settings, [m.value() for m in sent]) == [
        row | {"statistic": pytest.approx(row["statistic"], rel=1e-12)}
        for row in detections(kit.settings, [r.value for r in expected])
    ]


def detections(settings: Settings, values: list[bytes]) -> list[dict]:
    """Drift-events records, their wall time left out, in the order of their events."""
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    rows = [codec.decode(value) | {"detected_time": 0} for value in values]
    return sorted(rows, key=lambda row: (row["input_offset"], row["feature"]))
