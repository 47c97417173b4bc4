"""Drift schedules: the stream changes exactly where the schedule says, and only as it says.

The tests compare streams drawn at different moments; a generator's event times follow the day
of the clock's ``now``, so the module reads the clock once (a stream drawn just before UTC
midnight and its twin drawn just after would otherwise differ by a day).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import stream_app.devtools.generator.stream
from stream_app.cli import app
from stream_app.devtools.generator import (
    SCENARIOS,
    LabelledTransaction,
    TransactionGenerator,
    drift_schedule,
)
from stream_app.devtools.produce import ProduceOptions, synthetic_generator, synthetic_records
from stream_app.timing import now_ms

EVENTS = 80_000
POINT = EVENTS // 2  # every built-in scenario drifts half-way


@pytest.fixture(scope="module", autouse=True)
def one_day() -> Iterator[None]:
    """Every generator of the module sees the same ``now``."""
    with pytest.MonkeyPatch.context() as patch:
        fixed = now_ms()
        patch.setattr(stream_app.devtools.generator.stream, "now_ms", lambda: fixed)
        yield


def run(scenario: str, events: int = EVENTS, seed: int = 11) -> list[LabelledTransaction]:
    generator = TransactionGenerator(
        seed=seed, time_scale=600, drift=drift_schedule(scenario, events)
    )
    return list(itertools.islice(generator, events))


@pytest.fixture(scope="module")
def stationary() -> list[LabelledTransaction]:
    return run("none")


def patterns(stream: list[LabelledTransaction]) -> Counter[str]:
    return Counter(g.pattern for g in stream)


def test_the_built_in_scenarios_drift_half_way() -> None:
    assert drift_schedule("none", EVENTS) == ()
    for name in set(SCENARIOS) - {"none"}:
        assert [p.index for p in drift_schedule(name, EVENTS)] == [POINT], name


def test_drift_points_give_the_index_and_event_time_of_the_first_drifted_event() -> None:
    generator = TransactionGenerator(seed=2, drift=drift_schedule("new-pattern", 10_000))
    (point,) = generator.drift_points()
    stream = list(itertools.islice(generator, 10_000))
    assert point.index == 5000  # no fraud burst straddles it with this seed
    assert point.event_time == stream[point.index].event.event_time
    assert point.name == "gift-card cash-out appears"


def test_same_seed_same_stream_and_nothing_changes_before_the_point(
    stationary: list[LabelledTransaction],
) -> None:
    moved = run("pattern-moves")
    assert moved == run("pattern-moves")
    assert moved[:POINT] == stationary[:POINT]
    assert moved[POINT:] != stationary[POINT:]


def test_a_pattern_appears(stationary: list[LabelledTransaction]) -> None:
    stream = run("new-pattern")
    before, after = patterns(stream[:POINT]), patterns(stream[POINT:])
    assert before["gift_cards"] == 0 and after["gift_cards"] >= 50, after
    gift = [g.event for g in stream if g.pattern == "gift_cards"]
    assert {e.merchant_category for e in gift} == {"digital_goods"}
    assert all(e.card_country == e.merchant_country and e.amount >= 50 for e in gift)


def test_a_pattern_disappears() -> None:
    stream = run("pattern-disappears")
    before, after = patterns(stream[:POINT]), patterns(stream[POINT:])
    assert before["card_testing"] >= 20 and after["card_testing"] == 0, (before, after)
    assert after["risky_abroad"] >= 30


def test_a_pattern_moves_to_other_categories_countries_and_amounts() -> None:
    stream = run("pattern-moves")
    risky = [(i, g.event) for i, g in enumerate(stream) if g.pattern == "risky_abroad"]
    before = [e for i, e in risky if i < POINT]
    after = [e for i, e in risky if i >= POINT]
    assert len(before) >= 30 and len(after) >= 30
    assert {e.merchant_country for e in before} == {"NG", "RU"}
    assert {e.merchant_country for e in after} == {"BR", "ID"}
    assert {e.merchant_category for e in before} <= {
        "electronics",
        "jewelry",
        "gaming",
        "digital_goods",
    }
    assert {e.merchant_category for e in after} == {"travel", "entertainment"}
    assert statistics.median(e.amount for e in after) < 0.5 * statistics.median(
        e.amount for e in before
    )


def test_a_covariate_shift_moves_amounts_but_not_the_fraud_per_pattern(
    stationary: list[LabelledTransaction],
) -> None:
    """Big spenders become more active: legitimate amounts move by far more than a quarter of
    a standard deviation (log scale), while each pattern's share of events stays put."""
    stream = run("covariate-shift")

    def log_amounts(part: list[LabelledTransaction]) -> list[float]:
        return [math.log1p(g.event.amount) for g in part if not g.is_fraud]

    before, after = log_amounts(stream[:POINT]), log_amounts(stream[POINT:])
    shift = (statistics.fmean(after) - statistics.fmean(before)) / statistics.stdev(before)
    assert shift > 0.25, shift
    control = log_amounts(stationary[POINT:])
    assert abs(statistics.fmean(control) - statistics.fmean(before)) < 0.1 * shift
    before_share, after_share = patterns(stream[:POINT]), patterns(stream[POINT:])
    for pattern in ("large_amount", "card_testing", "risky_abroad", "compromised_card"):
        ratio = after_share[pattern] / before_share[pattern]
        assert 0.6 < ratio < 1.6, (pattern, before_share, after_share)


def test_a_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "drift.toml"
    path.write_text(
        '[[drift]]\nat = 0.75\nname = "late"\nspend_tilt = 1.0\n\n'
        "[[drift]]\nat = 0.25\nfraud_mix = { card_testing = 0.5 }\nrisky_amount = [1, 2]\n"
    )
    early, late = drift_schedule(str(path), 1000)
    assert (early.index, early.name, late.index, late.name) == (250, "drift 1", 750, "late")
    assert dict(early.regime.fraud_mix)["card_testing"] == 0.5
    assert early.regime.risky_amount == (1, 2)
    assert late.regime.risky_amount == (1, 2) and late.regime.spend_tilt == 1.0  # cumulative


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[[drift]]\nat = 0.5\ncolour = 'red'\n", "unknown fields \\['colour'\\]"),
        ("[[drift]]\nat = 1.5\n", "at must be in"),
        ("[[drift]]\nname = 'when?'\n", "'at'"),
        ("[[drift]]\nat = 0.5\nfraud_mix = { phishing = 0.1 }\n", "fraud_mix"),
        ("[[drift]]\nat = 0.5\nrisky_categories = ['yachts']\n", "risky_categories"),
    ],
)
def test_a_wrong_scenario_file_is_refused(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "drift.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        drift_schedule(str(path), 1000)


def test_an_unknown_scenario_names_the_built_in_ones() -> None:
    with pytest.raises(ValueError, match="covariate-shift"):
        drift_schedule("sudden-doom", 1000)


def test_produce_draws_the_scenario_for_its_number_of_events() -> None:
    """``stream-app produce --drift`` places the scenario's points within its own run."""
    options = ProduceOptions(events=4000, seed=5, drift="pattern-moves")
    (point,) = synthetic_generator(options).drift_points()
    assert point.index == 2000
    drifted = [item for item, _ in synthetic_records(options)]
    plain = [item for item, _ in synthetic_records(replace(options, drift="none"))]
    assert drifted[:2000] == plain[:2000]
    assert drifted[point.index].event.event_time == point.event_time


def test_the_cli_refuses_an_unknown_scenario_before_producing() -> None:
    result = CliRunner().invoke(app, ["produce", "--drift", "sudden-doom"])
    assert result.exit_code == 2
    assert "covariate-shift" in result.output
