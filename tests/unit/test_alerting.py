"""Alerts of scored batches (``AlertBuilder``) and through the scoring pipeline: what an alert
carries, which rows alert, the per-card cool-down, card testing caught by the shipped rules, and
card state (velocity and cool-down) surviving a restart through its changelog records.

Rule boundaries, rules-file errors and ``apply_cooldown`` itself are in ``test_alert_rules.py``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from stream_app.alerts import RuleSet
from stream_app.control.modelset import ModelSet
from stream_app.devtools.generator import TransactionGenerator
from stream_app.events import Transaction, TransactionBatch
from stream_app.features import FEATURE_NAMES, compute_features
from stream_app.kafka.records import InputRecord
from stream_app.scoring.alerting import AlertBuilder, AlertRecord
from stream_app.scoring.pipeline import ScoredBatch, ScoringPipeline
from stream_app.state import HOUR_SEPARATOR, CardState, CardStore, replay_velocity_features
from tests.unit.conftest import WORKER_ID, PipelineKit, checkpoint, partition_of
from tests.unit.support import YESTERDAY_MS

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
T0 = YESTERDAY_MS  # 00:00 UTC, the generator's default start
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2}


def rule(name: str, severity: str, feature: str, op: str, value: float) -> str:
    return (
        f'[[rule]]\nname = "{name}"\nseverity = "{severity}"\ndescription = "{name}"\n'
        f'all = [{{ feature = "{feature}", op = "{op}", value = {value} }}]\n\n'
    )


@dataclass(frozen=True)
class Scored:
    """Events in production order with the features training computes and the champion's
    scores."""

    events: list[Transaction]
    batch: TransactionBatch
    features: np.ndarray
    scores: np.ndarray

    @classmethod
    def of(cls, kit: PipelineKit, events: list[Transaction]) -> Scored:
        batch = TransactionBatch.from_transactions(events)
        velocity = replay_velocity_features(
            batch.card_id, batch.merchant_id, batch.amount, batch.event_time
        )
        features = compute_features(batch, velocity)
        return cls(events, batch, features, kit.champion.predict(features))

    def column(self, name: str) -> np.ndarray:
        return self.features[:, FEATURE_NAMES.index(name)]

    def rows(self, start: int, stop: int) -> Scored:
        """A later batch: rows ``start:stop``, with the features and scores of the whole."""
        events = self.events[start:stop]
        return Scored(
            events,
            TransactionBatch.from_transactions(events),
            self.features[start:stop],
            self.scores[start:stop],
        )


def generated(count: int, seed: int, cards: int = 300) -> list[Transaction]:
    generator = TransactionGenerator(seed=seed, cards=cards, time_scale=600)
    return [g.event for g in itertools.islice(generator, count)]


@pytest.fixture(scope="module")
def scored(pipeline_kit: PipelineKit) -> Scored:
    return Scored.of(pipeline_kit, generated(3000, seed=11))


def builder(kit: PipelineKit, rules: RuleSet, cooldown_ms: int) -> AlertBuilder:
    return AlertBuilder(kit.alerts, rules, cooldown_ms, WORKER_ID)


def build(
    alerts: AlertBuilder,
    kit: PipelineKit,
    scored: Scored,
    lookup: Callable[[str], CardState],
) -> list[AlertRecord]:
    create_times = [50_000 + i for i in range(len(scored.events))]
    return alerts.begin(
        scored.batch, scored.features, scored.scores, kit.champion, create_times, lookup
    ).records()


def card_states() -> tuple[dict[str, CardState], Callable[[str], CardState]]:
    states: dict[str, CardState] = {}
    return states, lambda card: states.setdefault(card, CardState.of())


# --- AlertBuilder ------------------------------------------------------------------------------

SCORE_AT = 0.2  # each rule fires alone on some rows of the generated data, and with others
BIG_AT = 300.0
RULES = RuleSet.parse(
    rule("big_amount", "low", "amount", ">=", BIG_AT)
    + rule("likely_fraud", "high", "score", ">=", SCORE_AT)
    + rule("quick_repeat", "medium", "count_1m", ">=", 2)
)


def fired_rules(scored: Scored, row: int) -> list[str]:
    """The rules of ``RULES`` that fire on a row, row by row, in file order."""
    checks = [
        ("big_amount", scored.batch.amount[row] >= BIG_AT),
        ("likely_fraud", scored.scores[row] >= SCORE_AT),
        ("quick_repeat", scored.column("count_1m")[row] >= 2),
    ]
    return [name for name, fires in checks if fires]


def test_an_alert_carries_its_rules_severity_top_contributions_and_score(
    pipeline_kit: PipelineKit, scored: Scored
) -> None:
    alerts = builder(pipeline_kit, RULES, cooldown_ms=0)  # every fired row alerts
    _, lookup = card_states()
    before = int(time.time() * 1000)
    records = build(alerts, pipeline_kit, scored, lookup)
    after = int(time.time() * 1000)

    expected = {i: names for i in range(len(scored.events)) if (names := fired_rules(scored, i))}
    assert len(records) == len(expected) == alerts.fired
    assert alerts.suppressed == 0
    combos = {tuple(names) for names in expected.values()}
    assert {("big_amount",), ("likely_fraud",), ("quick_repeat",)} <= combos, combos
    assert any(len(names) > 1 for names in combos), "the check must cover several rules per row"
    assert len(expected) < len(scored.events) / 2, "the check must cover rows without alerts"

    severities = set()
    for (row, names), record in zip(expected.items(), records, strict=True):
        value = pipeline_kit.alerts.decode(record.value)
        event = scored.events[row]
        assert record.key == event.card_id.encode()
        assert (value["event_id"], value["card_id"]) == (event.event_id, event.card_id)
        assert (value["event_time"], value["amount"]) == (event.event_time, event.amount)
        assert value["merchant_category"] == event.merchant_category
        assert value["input_create_time"] == 50_000 + row
        assert before <= value["alerted_time"] <= after
        assert value["worker_id"] == WORKER_ID
        assert value["model_version"] == pipeline_kit.champion.version
        assert value["score"] == scored.scores[row]
        assert value["rules"] == names
        severity = max((RULES.rule(n).severity for n in names), key=SEVERITY_RANK.__getitem__)
        assert value["severity"] == severity
        severities.add(severity)

        contributions = pipeline_kit.champion.contributions(scored.features[[row]])[0]
        assert contributions.shape == (len(FEATURE_NAMES) + 1,)  # the last one is the bias
        assert 1 / (1 + math.exp(-contributions.sum())) == pytest.approx(value["score"])
        top_names, top_values = value["top_features"], value["top_contributions"]
        assert len(top_names) == len(set(top_names)) == 3
        assert set(top_names) <= set(FEATURE_NAMES)
        assert top_values == sorted(contributions[: len(FEATURE_NAMES)], reverse=True)[:3]
        assert top_values == [contributions[FEATURE_NAMES.index(n)] for n in top_names]
    assert severities == {"low", "medium", "high"}


def test_no_alert_and_no_cool_down_bookkeeping_where_no_rule_fires(
    pipeline_kit: PipelineKit, scored: Scored
) -> None:
    never = RuleSet.parse(rule("never", "high", "amount", ">=", 1e9))

    def untouchable(card: str) -> CardState:
        raise AssertionError(f"card state of {card} looked up although no rule fired")

    alerts = builder(pipeline_kit, never, cooldown_ms=0)
    assert build(alerts, pipeline_kit, scored, untouchable) == []
    assert (alerts.fired, alerts.suppressed) == (0, 0)


def test_cool_down_keeps_one_alert_per_card_per_period_and_counts_the_rest(
    pipeline_kit: PipelineKit,
) -> None:
    """Every row fires; over three batches each card alerts once per 10 minutes of event time."""
    events = [
        Transaction(f"e{i}", card, "m1", "grocery", 20.0, "EUR", "pos", "FR", "FR", t)
        for i, (card, t) in enumerate(
            sorted(
                [("a", T0 + k * 90 * SECOND) for k in range(30)]
                + [("b", T0 + 20 * SECOND + k * 4 * MINUTE) for k in range(12)],
                key=lambda e: e[1],
            )
        )
    ]
    whole = Scored.of(pipeline_kit, events)
    cooldown = 10 * MINUTE
    alerts = builder(pipeline_kit, RuleSet.parse(rule("all", "low", "amount", ">=", 0)), cooldown)
    states, lookup = card_states()

    last: dict[str, int] = {}
    since: dict[str, int] = {}
    expected: list[str] = []
    for event in events:  # the cool-down, by hand
        card, t = event.card_id, event.event_time
        if card in last and t - last[card] < cooldown:
            since[card] += 1
        else:
            last[card], since[card] = t, 0
            expected.append(event.event_id)

    bounds = [0, 13, 14, len(events)]  # a batch of one row too
    alerted: list[str] = []
    for start, stop in itertools.pairwise(bounds):
        records = build(alerts, pipeline_kit, whole.rows(start, stop), lookup)
        alerted += [pipeline_kit.alerts.decode(r.value)["event_id"] for r in records]
    assert alerted == expected
    assert 2 < len(expected) < len(events) / 3
    assert (alerts.fired, alerts.suppressed) == (len(expected), len(events) - len(expected))
    for card in ("a", "b"):
        assert (states[card].last_alert_ms, states[card].suppressed) == (last[card], since[card])


# --- through the pipeline ----------------------------------------------------------------------


def alerts_of(kit: PipelineKit, result: ScoredBatch) -> list[dict[str, Any]]:
    topic = kit.settings.topics.alerts
    return [kit.alerts.decode(o.value) for o in result.outputs if o.topic == topic]


def card_testing_events() -> tuple[list[Transaction], list[Transaction]]:
    """Two batches: a victim with a normal history then 5 tiny payments within 41 s, split
    across the batches; another card making the same payments 61 s apart; and background."""

    def tx(event_id: str, card: str, amount: float, t: int, category: str) -> Transaction:
        merchant = f"m-{category[:4]}-{event_id}"
        channel = "ecom" if category == "digital_goods" else "pos"
        return Transaction(
            event_id, card, merchant, category, amount, "EUR", channel, "FR", "FR", t
        )

    start = T0 + 10 * SECOND
    history = [
        tx(f"history-{i}", "victim", 25.0 + i, start - (5 - i) * HOUR, "grocery") for i in range(5)
    ]
    tiny = [1.0, 0.5, 2.0, 1.0, 1.99]
    burst = [
        tx(f"burst-{i}", "victim", amount, start + s * SECOND, "digital_goods")
        for i, (amount, s) in enumerate(zip(tiny, [0, 8, 15, 27, 41], strict=True))
    ]
    slow = [
        tx(f"slow-{i}", "patient", amount, start + i * 61 * SECOND, "digital_goods")
        for i, amount in enumerate(tiny)
    ]
    background = generated(300, seed=5, cards=5000)  # ~20 s of event time from T0
    first = history + slow[:2] + background[:150] + burst[:2]
    second = background[150:] + burst[2:] + slow[2:]
    return first, second


def test_a_card_testing_burst_fires_the_shipped_card_testing_rule(
    pipeline_kit: PipelineKit,
) -> None:
    first, second = card_testing_events()
    models = ModelSet(pipeline_kit.champion)

    every = pipeline_kit.pipeline(cooldown_ms=0)  # default rules, every fired row alerts
    offsets: dict[int, int] = {}
    fired: dict[str, dict[str, Any]] = {}
    for events in (first, second):
        result = every.process(pipeline_kit.records(events, offsets), models)
        fired |= {a["event_id"]: a for a in alerts_of(pipeline_kit, result)}
    card_testing = [e for e, a in fired.items() if "card_testing" in a["rules"]]
    ours = [e for e in card_testing if fired[e]["card_id"] in ("victim", "patient")]
    assert ours == ["burst-3", "burst-4"]  # the 4th and 5th tiny payment within a minute
    assert fired["burst-3"]["severity"] == "high"
    assert fired["burst-3"]["card_id"] == "victim"

    # with the settings' cool-down (10 min), the burst raises one alert, the rest is counted
    cooled = pipeline_kit.pipeline()
    assert cooled.alerts.rules.rules == RuleSet.default().rules
    offsets = {}
    kept: list[dict[str, Any]] = []
    for events in (first, second):
        kept += alerts_of(
            pipeline_kit, cooled.process(pipeline_kit.records(events, offsets), models)
        )
    last: dict[str, int] = {}
    expected = []
    for alert in fired.values():  # in processing order: the cool-down by hand
        card, t = alert["card_id"], alert["event_time"]
        if card not in last or t - last[card] >= 10 * MINUTE:
            last[card] = t
            expected.append(alert["event_id"])
    assert [a["event_id"] for a in kept] == expected
    assert cooled.alerts.suppressed == len(fired) - len(kept) > 0
    burst_fired = [e for e in fired if e.startswith("burst-")]
    burst_kept = [a for a in kept if a["event_id"].startswith("burst-")]
    assert [a["event_id"] for a in burst_kept] == burst_fired[:1]
    victim = cooled.store.partition(partition_of("victim")).get("victim")
    assert victim is not None
    assert victim.last_alert_ms == burst_kept[0]["event_time"]
    assert victim.suppressed == len(burst_fired) - 1


def comparable(kit: PipelineKit, result: ScoredBatch) -> list[tuple[Any, ...]]:
    """A batch's outputs without the wall-clock times the pipeline stamps."""
    topics = kit.settings.topics
    codecs = {topics.predictions: kit.predictions, topics.alerts: kit.alerts}
    out: list[tuple[Any, ...]] = []
    for o in result.outputs:
        if o.topic in codecs:
            value = codecs[o.topic].decode(o.value)
            value.pop("scored_time", None)
            value.pop("alerted_time", None)
            out.append((o.topic, o.key, o.partition, sorted(value.items())))
        else:
            out.append((o.topic, o.key, o.partition, o.value, o.headers))
    return out


def test_changelog_records_restore_the_state_a_restarted_worker_continues_from(
    pipeline_kit: PipelineKit, feature_spy: list[np.ndarray]
) -> None:
    """The loop writes ``checkpoint(store)`` every few batches and on revoke; the next owner of
    the partitions restores them and scores exactly as the old owner would have, cool-downs
    included."""
    kit = pipeline_kit
    events = generated(4000, seed=12, cards=150)
    records = kit.records(events)
    batches = [records[s : s + 250] for s in range(0, len(records), 250)]
    rules = RuleSet.parse(rule("busy_card", "low", "count_1h", ">=", 3))  # fires often
    cooldown = 5 * MINUTE
    models = ModelSet(kit.champion)

    running = kit.pipeline(rules, cooldown)
    log: list[tuple[int, bytes, bytes | None]] = []
    since_checkpoint: set[tuple[int | None, bytes | None]] = set()
    for number, batch in enumerate(batches[:8], start=1):
        result = running.process(batch, models)
        assert kit.settings.topics.card_state not in {o.topic for o in result.outputs}
        since_checkpoint |= {(r.partition(), r.key()) for r in batch}
        if number % 3 == 0 or number == 8:  # every few batches, and on revoke after the 8th
            records_written = checkpoint(running.store)
            # a head record per card changed since the last checkpoint, in its input partition
            heads = {(p, key) for p, key, _ in records_written if HOUR_SEPARATOR not in key}
            assert heads == since_checkpoint
            assert all(p == partition_of(key.decode()) for p, key in heads)
            log += records_written
            since_checkpoint = set()
    assert running.alerts.suppressed > 0, "the check must cover cool-down bookkeeping"

    def restored(records: list[tuple[int, bytes, bytes | None]]) -> CardStore:
        store = CardStore()
        for p in range(4):
            store.restore(p, [(key, value) for q, key, value in records if q == p])
        return store

    full = restored(log)
    last_values = {(p, key): value for p, key, value in log}  # what compaction keeps
    compacted = restored([(p, key, value) for (p, key), value in last_values.items()])
    for p in range(4):
        size = len(running.store.partition(p))
        assert len(full.partition(p)) == len(compacted.partition(p)) == size > 0
    for p, key in last_values:
        if HOUR_SEPARATOR in key:
            continue
        state = running.store.partition(p).get(key.decode())
        assert state is not None
        assert (
            full.partition(p).get(key.decode()) == compacted.partition(p).get(key.decode()) == state
        )

    restarted = kit.pipeline(rules, cooldown, store=compacted)
    amnesiac = kit.pipeline(rules, cooldown)  # a restart without the changelog
    suppressed_before = running.alerts.suppressed
    differs = False
    for batch in batches[8:]:
        expected = running.process(batch, models)
        expected_features = feature_spy[-1]
        actual = restarted.process(batch, models)
        assert np.array_equal(feature_spy[-1], expected_features, equal_nan=True)
        assert comparable(kit, actual) == comparable(kit, expected)
        amnesiac.process(batch, models)
        differs = differs or not np.array_equal(feature_spy[-1], expected_features, equal_nan=True)
    assert differs, "the check must be sensitive to the restored state"
    assert restarted.alerts.suppressed == running.alerts.suppressed - suppressed_before > 0
    assert restarted.alerts.fired > 0
    assert checkpoint(restarted.store) == checkpoint(running.store)


def test_pipeline_alerts_are_keyed_by_card_on_the_alerts_topic(pipeline_kit: PipelineKit) -> None:
    first, second = card_testing_events()
    pipeline: ScoringPipeline = pipeline_kit.pipeline(cooldown_ms=0)
    models = ModelSet(pipeline_kit.champion)
    inputs: list[InputRecord] = pipeline_kit.records(first + second)
    result = pipeline.process(inputs, models)
    alerts = [o for o in result.outputs if o.topic == pipeline_kit.settings.topics.alerts]
    assert result.alerts == len(alerts) > 0
    for output in alerts:
        value = pipeline_kit.alerts.decode(output.value)
        assert output.key == value["card_id"].encode()
        assert (output.headers, output.partition) == (None, None)
