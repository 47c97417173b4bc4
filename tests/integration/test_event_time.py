"""Event time is input, and input can lie: the accepted window, retention and plausibility rules,
on the real broker and warehouse (docs/event-contract.md)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from confluent_kafka import Producer

from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.codecs.json import JsonCodec
from stream_app.devtools.bad_events import CATALOGUE, YEAR_2100
from stream_app.devtools.generator import TransactionGenerator
from stream_app.events import Transaction
from stream_app.kafka.config import producer_config
from stream_app.timing import now_ms
from tests.integration.conftest import query_warehouse, read_topic, wait_for

pytestmark = pytest.mark.integration

CHECK_REASONS = {"event_time_in_future", "event_time_too_old", "amount_implausible", "key_mismatch"}
DAY = 86_400_000


def count(settings, query: str) -> int:
    return int(query_warehouse(settings, query)[1][0][0])


def send(settings, records: list[tuple[bytes, bytes, int | None]]) -> None:
    """``(value, key, CreateTime or None for now)`` in this order."""
    producer = Producer(producer_config(settings))
    for value, key, stamp in records:
        producer.produce(settings.topics.transactions, value, key, timestamp=stamp or 0)
    assert producer.flush(30) == 0


def stored_once(settings, valid: int, dead: int) -> None:
    wait_for(
        lambda: (
            count(settings, "SELECT count() FROM predictions") >= valid
            and count(settings, "SELECT count() FROM dead_letters") >= dead
        ),
        what=f"{valid} predictions and {dead} dead letters",
    )


def test_lying_events_are_dead_lettered_with_their_reason_and_never_counted_as_scored(
    make_settings, running_worker, running_sink
):
    settings = make_settings()
    events = [g.event for g in itertools.islice(TransactionGenerator.ending_at(40, seed=4), 40)]
    liars = [case for case in CATALOGUE if case.reason in CHECK_REASONS]
    assert {case.reason for case in liars} == CHECK_REASONS
    codec = JsonCodec()
    send(
        settings,
        [(codec.encode(e), e.card_id.encode(), None) for e in events]
        + [(case.make(events[0]), events[0].card_id.encode(), None) for case in liars],
    )
    with running_sink(settings), running_worker(settings) as worker:
        stats = worker.loop.stats
        wait_for(lambda: stats.consumed == len(events) + len(liars), what="every record consumed")
        wait_for(
            lambda: (
                count(settings, "SELECT count() FROM dead_letters") == stats.dead_lettered
                and count(settings, "SELECT count() FROM predictions") >= len(events)
            ),
            what="the worker's outputs stored",
        )
        # nothing counted as scored may be missing from the warehouse (an event dated 1970 was:
        # the TTL drops it on insert)
        wait_for(
            lambda: count(settings, "SELECT count() FROM predictions") == stats.scored,
            timeout_s=10,
            what=f"the {stats.scored} events counted as scored in predictions",
        )
    assert stats.scored == len(events)
    assert count(settings, "SELECT count() FROM events") == len(events)
    _, by_reason = query_warehouse(
        settings, "SELECT reason, count() FROM dead_letters GROUP BY reason"
    )
    assert Counter({r: int(n) for r, n in by_reason}) == Counter(c.reason for c in liars)
    latest, largest = query_warehouse(
        settings,
        "SELECT toUnixTimestamp64Milli(max(event_time)), max(amount) FROM events",
    )[1][0]
    assert int(latest) <= now_ms()  # 2^62 ms is not stored as year 9999
    assert float(largest) <= settings.max_amount  # 1e308 is not scored and stored


def test_an_event_dated_2100_does_not_disable_a_cards_velocity_features(
    make_settings, running_worker, tmp_path
):
    """Six card-testing payments on a card that first sent an event dated 2100 alert exactly as
    on a control card (the rule reads the card's 1 h count)."""
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nname = "testing"\nseverity = "high"\ndescription = "3 in an hour"\n'
        'all = [{ feature = "count_1h", op = ">=", value = 3 }]\n'
    )
    settings = make_settings(alert_rules=rules)
    start = now_ms() - 60_000
    codec = JsonCodec()

    def payment(card: str, k: int, when: int) -> tuple[bytes, bytes, int | None]:
        event = Transaction(
            f"{card}-{k}", card, "m-dig-001", "digital_goods", 1.5, "EUR", "ecom", "FR", "FR", when
        )
        return codec.encode(event), card.encode(), None

    send(
        settings,
        [payment("card-liar", 0, YEAR_2100)]
        + [
            payment(card, k, start + k * 5_000)
            for k in range(1, 7)
            for card in ("card-liar", "card-ctl")
        ],
    )
    with running_worker(settings):
        dead = read_topic(settings, settings.topics.dead_letters, 1)
        alerts = read_topic(settings, settings.topics.alerts, 2)
    alerted = topic_codec(settings, schema_registry(settings), "alerts")
    assert sorted(alerted.decode(m.value())["event_id"] for m in alerts) == [
        "card-ctl-3",
        "card-liar-3",
    ]
    assert [dict(m.headers())["reason"] for m in dead] == [b"event_time_in_future"]


def test_events_older_than_the_retention_are_dead_lettered_and_kept_there(
    make_settings, running_worker, running_sink
):
    """What docs/event-contract.md promises: with a 3-day retention and 1 day of lateness, events
    two and ten days old (sent now, or replayed with their old timestamps) are dead letters
    `event_time_too_old`, in the dead_letters table, never in predictions or events; the tables'
    TTL is the setting."""
    settings = make_settings(retention_days=3, event_time_lateness_days=1)
    now = now_ms()
    codec = JsonCodec()
    ages = {"fresh": [3_600_000] * 5, "late": [2 * DAY] * 3, "expired": [10 * DAY] * 3}
    records = []
    for kind, offsets in ages.items():
        for i, age in enumerate(offsets):
            event = Transaction(
                f"{kind}-{i}", f"card-{i}", "m", "fuel", 20.0, "EUR", "pos", "FR", "FR", now - age
            )
            replayed = kind == "expired" and i == 0  # honest about its age: a stale backlog
            records.append(
                (codec.encode(event), event.card_id.encode(), now - age if replayed else None)
            )
    send(settings, records)
    with running_sink(settings), running_worker(settings):
        stored_once(settings, 5, 6)
    assert query_warehouse(settings, "SELECT event_id FROM predictions ORDER BY event_id")[1] == [
        [f"fresh-{i}"] for i in range(5)
    ]
    assert count(settings, "SELECT count() FROM events") == 5
    _, dead = query_warehouse(settings, "SELECT reason, count() FROM dead_letters GROUP BY reason")
    assert [(reason, int(n)) for reason, n in dead] == [("event_time_too_old", 6)]
    for table in ("events_raw", "predictions_raw", "alerts_raw"):
        where = f"database = '{settings.warehouse_database}' AND name = '{table}'"
        query = "SELECT create_table_query FROM system.tables WHERE " + where  # noqa: S608
        ddl = query_warehouse(settings, query)[1][0][0]  # the names are the test's own
        assert "toIntervalDay(3)" in ddl or "INTERVAL 3 DAY" in ddl, ddl
