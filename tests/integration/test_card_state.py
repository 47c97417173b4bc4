"""Per-card state survives a worker restart and follows partitions when a worker joins."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.codecs.json import JsonCodec
from stream_app.events import Transaction
from stream_app.kafka.config import producer_config
from stream_app.processes import ChildProcess
from stream_app.state.partition import HOUR_SEPARATOR, SIDE_PREFIX
from stream_app.timing import now_ms
from tests.integration.conftest import committed, query_warehouse, read_topic, wait_for

pytestmark = pytest.mark.integration

BUSY = 25  # the rule fires from the 25th event of a card within an hour
RULES = f"""
[[rule]]
name = "busy_card"
severity = "low"
description = "{BUSY} or more payments within an hour"
all = [{{ feature = "count_1h", op = ">=", value = {BUSY} }}]
"""
START_MS = now_ms() - 3_600_000  # an hour ago: event times stay in the past (checked by workers)


def send(settings, cards: dict[int, str], first: int, count: int) -> None:
    """``count`` payments per card, one second apart in event time, card i on partition i."""
    producer = Producer(producer_config(settings))
    codec = JsonCodec()
    for i in range(first, first + count):
        for partition, card in cards.items():
            event = Transaction(
                f"{card}-{i}", card, "m-1", "grocery", 10.0, "EUR", "pos", "FR", "FR",
                START_MS + i * 1000,
            )  # fmt: skip
            producer.produce(
                settings.topics.transactions,
                codec.encode(event),
                card.encode(),
                partition=partition,
            )
    assert producer.flush(10) == 0


def alerted_events(settings, expected: int) -> set[str]:
    codec = topic_codec(settings, schema_registry(settings), "alerts")
    return {
        codec.decode(m.value())["event_id"]
        for m in read_topic(settings, settings.topics.alerts, expected)
    }


def expected_alerts(cards: dict[int, str], total: int) -> set[str]:
    return {f"{card}-{i}" for card in cards.values() for i in range(BUSY - 1, total)}


@pytest.fixture
def rules_settings(make_settings, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    return make_settings(alert_rules=rules, alert_cooldown_s=0, batch_size=50)


def test_a_worker_killed_after_its_checkpoint_is_replaced_by_one_that_restores_its_state(
    rules_settings, running_worker, tmp_path
):
    settings = rules_settings
    cards = {p: f"card-restart-{p}" for p in range(settings.topics.partitions)}
    first_half = 20 * len(cards)
    send(settings, cards, 0, 20)
    first = ChildProcess("worker-killed", ["worker"], settings, tmp_path)
    try:
        # the checkpoint of the first half: every offset committed, after the state it covers
        wait_for(
            lambda: committed(settings, settings.worker_group) == first_half,
            60,
            "the first half checkpointed",
        )
    finally:
        first.kill()  # SIGKILL: the replacement has only the changelog and the committed offsets
    state = read_topic(settings, settings.topics.card_state, len(cards))
    card_keys = [  # the cards' head records (not their hours, nor the drift monitors' state)
        m.key()
        for m in state
        if not m.key().startswith(SIDE_PREFIX) and HOUR_SEPARATOR not in m.key()
    ]
    assert sorted(card_keys) == sorted(c.encode() for c in cards.values())
    assert alerted_events(settings, 0) == set()  # 20 < 25: nothing yet
    send(settings, cards, 20, 20)
    with running_worker(settings) as second:
        wait_for(lambda: second.loop.stats.scored >= first_half, 60, "second half scored")
        alerts = alerted_events(settings, len(expected_alerts(cards, 40)))
    assert second.loop.stats.consumed == first_half  # what came after the checkpoint, no replay
    # a clean replay of all 40 events per card alerts from the 25th on; from empty state the
    # second worker would count 1..20 and never reach 25
    assert alerts == expected_alerts(cards, 40)


def test_counts_continue_when_partitions_move_to_a_new_worker(
    rules_settings, running_worker, running_sink
):
    settings = rules_settings
    cards = {p: f"card-move-{p}" for p in range(settings.topics.partitions)}
    other = settings.model_copy(update={"worker_id": "joiner"})
    with running_sink(settings), running_worker(settings) as first:
        send(settings, cards, 0, 20)
        wait_for(lambda: first.loop.stats.scored >= 20 * len(cards), 60, "first worker scored")
        assert len(first.loop.stats.assigned) == settings.topics.partitions
        with running_worker(other) as joiner:
            wait_for(
                lambda: (
                    joiner.loop.stats.assigned
                    and len(first.loop.stats.assigned) + len(joiner.loop.stats.assigned)
                    == settings.topics.partitions
                ),
                60,
                "partitions split between the two workers",
            )
            moved = len(joiner.loop.stats.assigned)
            send(settings, cards, 20, 20)
            wait_for(
                lambda: first.loop.stats.scored + joiner.loop.stats.scored >= 40 * len(cards),
                60,
                "second half scored",
            )
            alerts = alerted_events(settings, len(expected_alerts(cards, 40)))
        assert moved >= 1
        assert alerts == expected_alerts(cards, 40)
        wait_for(
            lambda: query_warehouse(settings, "SELECT count() FROM alerts")[1][0][0] >= len(alerts),
            30,
            "alerts stored",
        )
    rows = query_warehouse(
        settings,
        "SELECT worker_id, count(), min(arrayElement(rules, 1)) FROM alerts GROUP BY 1 ORDER BY 1",
    )[1]
    assert {row[2] for row in rows} == {"busy_card"}
    assert sum(row[1] for row in rows) == len(alerts)
