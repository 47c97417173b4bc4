"""Exactly-once mode on the real broker: a crash mid-transaction and a zombie worker leave exactly
one committed prediction per valid event, and card state equal to a clean replay of the events.

Each test takes the guarantee as a parameter: run with ``at_least_once`` (``pytest -k
at_least_once --runxfail``) it fails, which shows what the transactions protect.
"""

from __future__ import annotations

import os
import signal
from collections import Counter, defaultdict

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from stream_app.codecs.factory import schema_registry, topic_codec, transaction_decoder
from stream_app.devtools.produce import ProduceOptions, ProduceReport
from stream_app.errors import CodecError
from stream_app.event_checks import EventChecks
from stream_app.events import TransactionBatch
from stream_app.kafka.config import range_reader_config
from stream_app.kafka.drain import read_to_end
from stream_app.processes import ChildProcess, get_json
from stream_app.settings import Settings
from stream_app.state import CardStore, batch_velocity_features
from stream_app.state.card import CardState
from tests.integration.conftest import committed, producing, read_topic, wait_for

pytestmark = pytest.mark.integration

GUARANTEES = [
    "exactly_once",
    pytest.param(
        "at_least_once",
        marks=pytest.mark.xfail(strict=True, reason="replays are visible without transactions"),
    ),
]


def health(worker: ChildProcess) -> dict[str, object]:
    return get_json(worker.web_url("/health", timeout_s=300)) or {}  # slow to start when busy


def scored(worker: ChildProcess) -> int:
    return int(str(health(worker).get("scored", 0)))


def assert_one_prediction_per_event(settings: Settings, report: ProduceReport) -> None:
    """Read committed, the predictions topic holds one record per valid event, each event once;
    the dead-letter topic one record per malformed one."""
    records = read_topic(settings, settings.topics.predictions, report.valid)
    codec = topic_codec(settings, schema_registry(settings), "predictions")
    ids = Counter(codec.decode(r.value() or b"")["event_id"] for r in records)
    twice = [event for event, n in ids.items() if n > 1]
    assert (len(records), len(twice)) == (report.valid, 0), f"e.g. twice: {twice[:5]}"
    dead = read_topic(settings, settings.topics.dead_letters, report.malformed)
    assert len(dead) == report.malformed


def committed_state(settings: Settings) -> CardStore:
    """The cards of the changelog read committed, restored as a worker restores them."""
    consumer = Consumer(range_reader_config(settings, "state-reader"))
    store = CardStore()
    try:
        for p in range(settings.topics.partitions):
            start = TopicPartition(settings.topics.card_state, p, OFFSET_BEGINNING)
            records = [(r.key() or b"", r.value()) for r in read_to_end(consumer, start)]
            assert store.restore(p, records) == []
    finally:
        consumer.close()
    return store


def replayed_state(settings: Settings, events: int) -> dict[tuple[int, bytes], CardState]:
    """Every valid input event through the serving state code once, partition by partition in
    offset order, on a fresh store: what the state must be."""
    decoder = transaction_decoder(settings, schema_registry(settings))
    checks = EventChecks.from_settings(settings)
    by_partition = defaultdict(list)
    for record in sorted(
        read_topic(settings, settings.topics.transactions, events),
        key=lambda r: (r.partition(), r.offset()),
    ):
        try:
            event = decoder.decode(record.value() or b"")
            checks.check(event, record.key(), record.timestamp())
        except CodecError:
            continue
        by_partition[record.partition() or 0].append(event)
    store = CardStore()
    for partition, valid in by_partition.items():
        batch = TransactionBatch.from_transactions(valid)
        batch_velocity_features(
            store,
            [partition] * len(valid),
            batch.card_id,
            batch.merchant_id,
            batch.amount,
            batch.event_time,
        )
    return {
        (p, card.encode()): state
        for p in store.assigned()
        for card in {e.card_id for e in by_partition[p]}
        if (state := store.partition(p).get(card)) is not None
    }


def velocity(state: CardState) -> tuple[object, ...]:
    """What the velocity features are computed from (alert cool-downs left aside)."""
    return (
        state.events(),
        state.amount_count,
        round(state.retained_sum, 6),
        round(state.amount_mean, 6),
        state.newest_ms,
    )


def assert_state_is_a_clean_replay(settings: Settings, events: int) -> None:
    expected = replayed_state(settings, events)
    actual = committed_state(settings)
    differ = [
        key
        for key, state in expected.items()
        if (restored := actual.partition(key[0]).get(key[1].decode())) is None
        or velocity(restored) != velocity(state)
    ]
    assert not differ, f"{len(differ)} of {len(expected)} cards differ, e.g. {differ[:3]}"


def under_load(make_settings, guarantee: str, worker_id: str) -> Settings:
    """Small batches and checkpoints every 200 ms in either guarantee: many commits in a run."""
    return make_settings(
        processing_guarantee=guarantee,
        worker_id=worker_id,
        batch_size=200,
        checkpoint_interval_ms=200,
        transaction_interval_ms=200,
    )


def wait_all_committed(settings: Settings, result: dict[str, ProduceReport], events: int) -> None:
    wait_for(lambda: "report" in result, 60, "every event produced")
    wait_for(
        lambda: committed(settings, settings.worker_group) == events, 180, "every event committed"
    )


@pytest.mark.parametrize("guarantee", GUARANTEES)
def test_sigkill_mid_transaction_then_restart_commits_each_event_once(
    make_settings, tmp_path, guarantee
):
    # the restarted worker has the same transactional.id: it fences what the killed one left open
    settings = under_load(make_settings, guarantee, "eos-worker")
    options = ProduceOptions(events=20_000, rate=2500, bad_fraction=0.01, seed=21)
    with producing(settings, options) as result:
        first = ChildProcess("worker-1", ["worker"], settings, tmp_path)
        try:
            wait_for(
                lambda: committed(settings, settings.worker_group) > 0 and scored(first) >= 4000,
                180,
                "first worker scoring past a commit",
            )
        finally:
            first.kill()  # SIGKILL: a transaction open, outputs of uncommitted batches sent
        second = ChildProcess("worker-2", ["worker"], settings, tmp_path)
        try:
            wait_all_committed(settings, result, options.events)
            commits = health(second)
        finally:
            code = second.stop()
    assert code == 0, second.log_path.read_text()[-2000:]
    if guarantee == "exactly_once":  # each commit timed by part, its state records counted
        parts = commits["transaction_seconds"]
        assert commits["transactions"] > 0 and commits["transaction_state_records"] > 0
        # wait: the loop waiting for a commit in flight once the next batch is scored
        assert sorted(parts) == ["begin", "end", "flush", "offsets", "state", "wait"], parts
    assert_one_prediction_per_event(settings, result["report"])
    assert_state_is_a_clean_replay(settings, options.events)


@pytest.mark.parametrize("guarantee", GUARANTEES)
def test_a_zombie_worker_is_fenced_and_its_late_output_never_visible(
    make_settings, tmp_path, guarantee
):
    settings = under_load(make_settings, guarantee, "eos-zombie")  # its replacement's id too
    options = ProduceOptions(events=20_000, rate=2500, bad_fraction=0.01, seed=22)
    with producing(settings, options) as result:
        zombie = ChildProcess("zombie", ["worker"], settings, tmp_path)
        replacement = None
        try:
            wait_for(lambda: scored(zombie) >= 3000, 180, "the first worker scoring")
            os.kill(zombie.pid, signal.SIGSTOP)  # hung mid-stream, records consumed, not scored
            replacement = ChildProcess("replacement", ["worker"], settings, tmp_path)
            wait_for(lambda: scored(replacement) >= 2000, 180, "the replacement took over")
            os.kill(zombie.pid, signal.SIGCONT)  # wakes up past its session timeout
            if guarantee == "exactly_once":
                wait_for(lambda: "fenced" in str(health(zombie)), 60, "the zombie fenced")
                assert health(zombie)["status"] == "unhealthy"
                assert zombie.alive()  # stays up, unhealthy: no crash loop
            wait_all_committed(settings, result, options.events)
        finally:
            os.kill(zombie.pid, signal.SIGCONT)
            codes = [zombie.stop()] + ([replacement.stop()] if replacement else [])
    assert codes == [0, 0], zombie.log_path.read_text()[-2000:]
    assert_one_prediction_per_event(settings, result["report"])
    assert_state_is_a_clean_replay(settings, options.events)
