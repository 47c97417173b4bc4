"""Alert rules: each kind fires at its boundary and not past it, every mistake in a rules file is
reported with the file, the rule and where in it, a failed reload keeps the old set, the cool-down
suppresses and counts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import stream_app.alerts
from stream_app.alerts import (
    FEATURES,
    OPERATORS,
    Condition,
    Rule,
    RuleError,
    RuleSet,
    apply_cooldown,
)
from stream_app.errors import ConfigError

NAN = float("nan")

#: a valid rule, then a blank line: the rule under test is the second one
GOOD = """\
[[rule]]
name = "good"
severity = "low"
description = "fine"
all = [{ feature = "score", op = ">=", value = 0.5 }]

"""
BAD_RULE = "rule 2"
SCORE_09 = 'all = [{ feature = "score", op = ">=", value = 0.9 }]'


def rule(*lines: str) -> str:
    """A ``[[rule]]`` table with these body lines."""
    return "[[rule]]\n" + "".join(f"{line}\n" for line in lines)


def named(*lines: str, name: str = "r") -> str:
    """A rule with name, severity and description set, and these further lines."""
    return rule(f'name = "{name}"', 'severity = "high"', 'description = "d"', *lines)


def parse(text: str) -> RuleSet:
    return RuleSet.parse(text, "rules.toml")


def columns(**values: list[float]) -> dict[str, np.ndarray]:
    return {name: np.array(v, dtype=np.float64) for name, v in values.items()}


def fired_rows(
    rules: RuleSet, cols: dict[str, np.ndarray], categories: list[str] | None = None
) -> list[int]:
    rows = len(next(iter(cols.values())))
    return [row for row, _ in rules.evaluate(cols, categories or ["grocery"] * rows)]


# --- evaluation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "fires"),
    [
        (">=", [False, True, True]),
        (">", [False, False, True]),
        ("<=", [True, True, False]),
        ("<", [True, False, False]),
    ],
)
def test_score_threshold_boundary(op: str, fires: list[bool]) -> None:
    rules = parse(named(f'all = [{{ feature = "score", op = "{op}", value = 0.9 }}]'))
    rows = fired_rows(rules, columns(score=[0.8999999, 0.9, 0.9000001]))
    assert rows == [i for i, f in enumerate(fires) if f]


def test_amount_band_edges_are_inclusive() -> None:
    rules = parse(named(SCORE_09, "amount_min = 100", "amount_max = 200.5"))
    cols = columns(score=[0.95] * 5, amount=[99.99, 100.0, 150.0, 200.5, 200.51])
    assert fired_rows(rules, cols) == [1, 2, 3]


@pytest.mark.parametrize(
    ("band", "fires"),
    [("amount_min = 100", [False, True, True]), ("amount_max = 100", [True, True, False])],
)
def test_amount_band_with_one_bound(band: str, fires: list[bool]) -> None:
    rules = parse(named(SCORE_09, band))
    rows = fired_rows(rules, columns(score=[1.0] * 3, amount=[99.0, 100.0, 101.0]))
    assert rows == [i for i, f in enumerate(fires) if f]


def test_category_filter_matches_exactly() -> None:
    rules = parse(named(SCORE_09, 'merchant_category = ["electronics", "jewelry"]'))
    categories = ["electronics", "grocery", "jewelry", "Electronics", "electronics"]
    cols = columns(score=[0.95, 0.95, 0.95, 0.95, 0.5])
    assert fired_rows(rules, cols, categories) == [0, 2]


def test_score_amount_and_category_together() -> None:
    rules = parse(
        named(
            'all = [{ feature = "score", op = ">=", value = 0.5 }]',
            'merchant_category = ["electronics", "jewelry"]',
            "amount_min = 500",
        )
    )
    categories = ["jewelry", "jewelry", "jewelry", "fuel"]
    cols = columns(score=[0.5, 0.49, 0.7, 0.9], amount=[500.0, 900.0, 499.99, 900.0])
    assert fired_rows(rules, cols, categories) == [0]


def test_velocity_rule_boundary() -> None:
    rules = parse(named('all = [{ feature = "count_1m", op = ">=", value = 4 }]', "amount_max = 5"))
    cols = columns(count_1m=[3.0, 4.0, 4.0, 9.0], amount=[1.0, 5.0, 5.01, 0.5])
    assert fired_rows(rules, cols) == [1, 3]


def test_combination_needs_every_condition() -> None:
    rules = parse(
        named(
            "all = [",
            '  { feature = "score", op = ">=", value = 0.5 },',
            '  { feature = "count_1h", op = ">", value = 3 },',
            '  { feature = "seconds_since_previous", op = "<", value = 30 },',
            "]",
        )
    )
    cols = columns(
        score=[0.5, 0.49, 0.9, 0.9, 0.9],
        count_1h=[4.0, 10.0, 3.0, 4.0, 4.0],
        seconds_since_previous=[29.9, 1.0, 1.0, 30.0, 0.0],
    )
    assert fired_rows(rules, cols) == [0, 4]


@pytest.mark.parametrize("op", list(OPERATORS))
def test_nan_never_fires(op: str) -> None:
    rules = parse(
        named(f'all = [{{ feature = "amount_to_mean", op = "{op}", value = 1 }}]', "amount_min = 0")
    )
    cols = columns(amount_to_mean=[NAN, NAN, 1.0], amount=[10.0, NAN, NAN])
    assert fired_rows(rules, cols) == []


def test_nan_in_one_condition_of_a_combination() -> None:
    rules = parse(
        named(
            "all = [",
            '  { feature = "score", op = ">=", value = 0.5 },',
            '  { feature = "distinct_merchants_1h", op = "<", value = 100 },',
            "]",
        )
    )
    cols = columns(score=[0.9, 0.9, NAN], distinct_merchants_1h=[NAN, 2.0, 2.0])
    assert fired_rows(rules, cols) == [1]


def test_names_in_file_order_and_quiet_rows_left_out() -> None:
    text = (
        named('all = [{ feature = "count_24h", op = ">", value = 10 }]', name="busy")
        + named(SCORE_09, name="high")
        + named('all = [{ feature = "score", op = ">=", value = 0.5 }]', name="medium")
    )
    cols = columns(score=[0.95, 0.1, 0.6, 0.1], count_24h=[11.0, 0.0, 11.0, 11.0])
    fired = parse(text).evaluate(cols, ["a", "b", "c", "d"])
    assert fired == [(0, ["busy", "high", "medium"]), (2, ["busy", "medium"]), (3, ["busy"])]
    assert all(type(row) is int for row, _ in fired)


def test_evaluate_checks_the_columns_it_needs() -> None:
    rules = parse(named(SCORE_09, "amount_min = 1"))
    assert rules.features == {"score", "amount"}
    with pytest.raises(ValueError, match="'amount' column"):
        rules.evaluate(columns(score=[1.0]), ["a"])
    with pytest.raises(ValueError, match="shape"):
        rules.evaluate(columns(score=[1.0, 1.0], amount=[1.0, 1.0]), ["a"])
    assert rules.evaluate(columns(score=[], amount=[]), []) == []


def reference_fires(rule: Rule, values: dict[str, float], category: str) -> bool:
    """One row, one rule, plain Python: what the vectorised evaluation must agree with."""
    compare = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__}
    amount = values["amount"]
    return (
        all(compare[c.op](values[c.feature], c.value) for c in rule.conditions)
        and (rule.amount_min is None or amount >= rule.amount_min)
        and (rule.amount_max is None or amount <= rule.amount_max)
        and (rule.merchant_category is None or category in rule.merchant_category)
    )


CATEGORIES = ["grocery", "electronics", "jewelry", "atm"]
THRESHOLDS = [0.0, 0.5, 0.9, 1.0, 3.0, 5.0]
thresholds = st.sampled_from(THRESHOLDS)
conditions = st.sampled_from(FEATURES).flatmap(
    lambda feature: st.builds(
        Condition,
        feature=st.just(feature),
        op=st.sampled_from(list(OPERATORS)),
        value=st.sampled_from(
            [t for t in THRESHOLDS if t <= 1.0] if feature == "score" else THRESHOLDS
        ),
    )
)
#: an amount band: each bound or none, the lower one first when both are given
bands = st.tuples(st.none() | thresholds, st.none() | thresholds).map(
    lambda b: tuple(sorted(b)) if None not in b else b
)
rules_strategy = bands.flatmap(
    lambda band: st.builds(
        Rule,
        name=st.just("x"),
        severity=st.just("low"),
        description=st.just("d"),
        merchant_category=st.none() | st.frozensets(st.sampled_from(CATEGORIES), min_size=1),
        amount_min=st.just(band[0]),
        amount_max=st.just(band[1]),
        # by its alias: hypothesis reads the signature pydantic gives the class
        **{"all": st.lists(conditions, min_size=1, max_size=3).map(tuple)},
    )
)
cell = st.sampled_from([NAN, 0.0, 0.5, 0.9, 1.0, 3.0, 4.0, 5.0])


@settings(deadline=None, max_examples=150)
@given(
    rules=st.lists(rules_strategy, min_size=1, max_size=4),
    data=st.lists(
        st.tuples(st.fixed_dictionaries({f: cell for f in FEATURES}), st.sampled_from(CATEGORIES)),
        min_size=1,
        max_size=12,
    ),
)
def test_vectorised_evaluation_matches_row_by_row(
    rules: list[Rule], data: list[tuple[dict[str, float], str]]
) -> None:
    ruleset = RuleSet(tuple(r.model_copy(update={"name": f"r{i}"}) for i, r in enumerate(rules)))
    cols = {f: np.array([values[f] for values, _ in data]) for f in FEATURES}
    expected = []
    for row, (values, category) in enumerate(data):
        names = [r.name for r in ruleset if reference_fires(r, values, category)]
        if names:
            expected.append((row, names))
    assert ruleset.evaluate(cols, [category for _, category in data]) == expected


# --- validation -----------------------------------------------------------------------------


RULE_CASES = [
    ("unknown key", named(SCORE_09, 'colour = "red"'), "colour: Extra inputs are not permitted"),
    (
        "unknown feature",
        named('all = [{ feature = "count_2m", op = ">", value = 1 }]'),
        "all[0].feature: unknown feature 'count_2m'",
    ),
    (
        "bad operator",
        named('all = [{ feature = "score", op = "=>", value = 0.5 }]'),
        "all[0].op: Input should be '>', '>=', '<' or '<=', got '=>'",
    ),
    (
        "equality is not an operator",
        named('all = [{ feature = "count_1m", op = "==", value = 1 }]'),
        "got '=='",
    ),
    (
        "value as a string",
        named('all = [{ feature = "score", op = ">=", value = "0.5" }]'),
        "all[0].value: Input should be a valid number, got '0.5'",
    ),
    (
        "value as a boolean",
        named('all = [{ feature = "score", op = ">=", value = true }]'),
        "all[0].value: Input should be a valid number, got True",
    ),
    (
        "severity not a string",
        rule('name = "r"', "severity = 3", 'description = "d"', SCORE_09),
        "severity: Input should be 'low', 'medium' or 'high', got 3",
    ),
    (
        "unknown severity",
        rule('name = "r"', 'severity = "critical"', 'description = "d"', SCORE_09),
        "severity: Input should be 'low', 'medium' or 'high', got 'critical'",
    ),
    (
        "categories not an array",
        named(SCORE_09, 'merchant_category = "electronics"'),
        "merchant_category: Input should be a valid frozenset, got 'electronics'",
    ),
    ("empty categories", named(SCORE_09, "merchant_category = []"), "at least 1 item"),
    (
        "amount as a string",
        named(SCORE_09, 'amount_min = "100"'),
        "amount_min: Input should be a valid number, got '100'",
    ),
    (
        "all as a table",
        named('all = { feature = "score", op = ">=", value = 0.5 }'),
        "all: Input should be a valid tuple, got a dict",
    ),
    (
        "condition not a table",
        named('all = ["score >= 0.5"]'),
        "all[0]: Input should be a valid dictionary",
    ),
    ("empty rule", rule(), "empty rule"),
    (
        "conditions under their Python name",
        named('conditions = [{ feature = "score", op = ">=", value = 0.5 }]'),
        "all: Field required",
    ),
    ("no conditions", named("all = []"), "all: Tuple should have at least 1 item"),
    (
        "missing description",
        rule('name = "r"', 'severity = "low"', SCORE_09),
        "description: Field required",
    ),
    (
        "score above 1",
        named('all = [{ feature = "score", op = ">=", value = 1.5 }]'),
        "all[0]: threshold 1.5 out of range for score (must be [0, 1])",
    ),
    (
        "score below 0",
        named('all = [{ feature = "score", op = ">", value = -0.1 }]'),
        "out of range for score",
    ),
    (
        "negative count",
        named('all = [{ feature = "count_1h", op = ">", value = -1 }]'),
        "threshold -1 out of range for count_1h (must be >= 0)",
    ),
    (
        "negative amount",
        named(SCORE_09, "amount_max = -5"),
        "amount_max: Input should be greater than or equal to 0, got -5",
    ),
    (
        "inverted band",
        named(SCORE_09, "amount_min = 10", "amount_max = 5"),
        "amount_min (10) is above amount_max (5)",
    ),
    (
        "not finite",
        named('all = [{ feature = "sum_1h", op = ">", value = inf }]'),
        "all[0].value: Input should be a finite number, got inf",
    ),
    (
        "condition extra key",
        named('all = [{ feature = "score", op = ">", value = 0.5, weight = 2 }]'),
        "all[0].weight: Extra inputs are not permitted, got 2",
    ),
    (
        "condition missing key",
        named('all = [{ feature = "score", value = 0.5 }]'),
        "all[0].op: Field required",
    ),
    (
        "second condition",
        named(
            "all = [",
            '  { feature = "score", op = ">", value = 0.5 },',
            '  { feature = "count_1h", op = "~", value = 2 },',
            "]",
        ),
        "all[1].op: Input should be",
    ),
    ("bad name", named(SCORE_09, name="two words"), "name: must be 1-64 letters"),
    (
        "duplicate name",
        named(SCORE_09, name="good"),
        "duplicate rule name 'good' (first is rule 1)",
    ),
]


@pytest.mark.parametrize(
    ("bad", "reason"), [c[1:] for c in RULE_CASES], ids=[c[0] for c in RULE_CASES]
)
def test_rule_errors_name_file_line_and_reason(tmp_path: Path, bad: str, reason: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(GOOD + bad + "\n" + named(SCORE_09, name="after"))
    with pytest.raises(RuleError) as caught:
        RuleSet.load(path)
    error = caught.value
    assert error.source == str(path)
    assert error.rule is not None
    assert error.rule.startswith(BAD_RULE)
    assert reason in error.reason
    assert str(error).startswith(f"{path}: {BAD_RULE}")
    assert isinstance(error, ConfigError)


def test_rule_error_names_the_rule_when_it_can() -> None:
    with pytest.raises(RuleError, match=r"^rules.toml: rule 1 'r': colour: Extra inputs"):
        parse(named(SCORE_09, 'colour = "red"'))


FILE_CASES = [
    (
        "syntax error",
        GOOD + named(SCORE_09, "amount_min = "),
        "Invalid value (at line 12, column 14)",
    ),
    ("duplicate key", GOOD + named(SCORE_09, 'name = "x"'), "Cannot overwrite a value (at line 12"),
    ("unterminated string", GOOD + '[[rule]]\nname = "x\n', "invalid TOML: Illegal character"),
    ("unterminated at the end", GOOD + '[[rule]]\nname = """x\n\n', "Unterminated string"),
    ("unknown top-level key", "# rules\nversion = 2\n" + GOOD, "unknown top-level key 'version'"),
    ("unknown top-level table", GOOD + "[settings]\nx = 1\n", "unknown top-level key 'settings'"),
    ("no rules", "# nothing here\n", "no rules"),
    ("single table", "\n[rule]\nname = 'x'\n", "write each rule as a [[rule]] table"),
    ("not tables", "rule = [1, 2]\n", "write each rule as a [[rule]] table"),
]


@pytest.mark.parametrize(
    ("text", "reason"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_file_errors_name_the_file_and_the_reason(text: str, reason: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse(text)
    assert caught.value.rule is None
    assert reason in caught.value.reason
    assert str(caught.value) == f"rules.toml: {caught.value.reason}"


def test_an_array_of_inline_tables_is_read_as_rules() -> None:
    """TOML's two spellings of an array of tables are the same document."""
    inline = "rule = [{ name = 'x', severity = 'low', description = 'd', all = [] }]\n"
    with pytest.raises(RuleError, match=r"^rules.toml: rule 1 'x': all: Tuple should have"):
        parse(inline)


def test_brackets_inside_strings_do_not_confuse_the_count() -> None:
    tricky = rule(
        'name = "tricky"',
        'severity = "low"',
        'description = """',
        '[[rule]] is how a rule starts; a quote \\""" does not end this',
        '"""',
        "merchant_category = [",
        "  '[[rule]]',  # a comment [[rule]]",
        '  "#[[rule]]",',
        "]",
        SCORE_09,
    )
    bad = rule('  name = "bad"', 'severity = "low"', 'description = "d"', "all = []")
    with pytest.raises(RuleError) as caught:
        parse(GOOD + tricky + "  [[ 'rule' ]]  # spaced, quoted header\n" + bad[9:])
    assert caught.value.rule == "rule 3 'bad'"
    assert caught.value.reason == "all: Tuple should have at least 1 item after validation, not 0"


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(RuleError, match=r"nope.toml: cannot read") as caught:
        RuleSet.load(missing)
    assert caught.value.rule is None
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[[rule]]")
    with pytest.raises(RuleError, match="cannot read"):
        RuleSet.load(binary)


# --- the set as a whole -----------------------------------------------------------------------


def test_reload_failure_leaves_the_old_set(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(named(SCORE_09, name="high"))
    rules = RuleSet.load(path)
    cols = columns(score=[0.95, 0.6])
    before = rules.evaluate(cols, ["a", "b"])

    path.write_text(named('all = [{ feature = "score", op = ">=", value = 5 }]', name="high"))
    with pytest.raises(
        RuleError, match=r"rules.toml: rule 1 'high': all\[0\]: threshold 5 out of range"
    ):
        rules.reload(path)
    assert [r.name for r in rules] == ["high"]
    assert rules.evaluate(cols, ["a", "b"]) == before == [(0, ["high"])]

    path.write_text(named('all = [{ feature = "score", op = ">=", value = 0.5 }]', name="medium"))
    reloaded = rules.reload(path)
    assert reloaded.evaluate(cols, ["a", "b"]) == [(0, ["medium"]), (1, ["medium"])]
    assert rules.evaluate(cols, ["a", "b"]) == before


def test_a_set_is_immutable() -> None:
    rules = parse(named(SCORE_09))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.rules = ()  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        rules.rules[0].severity = "low"  # type: ignore[misc]
    assert isinstance(rules.rules, tuple)


def test_rule_lookup_and_unique_names() -> None:
    rules = parse(GOOD + named(SCORE_09, name="high"))
    assert (rules.rule("high").severity, len(rules)) == ("high", 2)
    with pytest.raises(KeyError):
        rules.rule("nope")
    with pytest.raises(ValueError, match="unique"):
        RuleSet(rules.rules + rules.rules[:1])


def test_default_rules_load_and_fire() -> None:
    rules = RuleSet.default()
    shipped = Path(stream_app.alerts.__file__).with_name("default_rules.toml")
    assert RuleSet.load(shipped).rules == rules.rules
    assert len(rules) >= 4
    assert {r.severity for r in rules} <= {"low", "medium", "high"}
    assert rules.features <= set(FEATURES)
    n = 4
    cols = {feature: np.full(n, NAN) for feature in rules.features}
    cols["score"] = np.array([0.95, 0.6, 0.05, 0.1])
    cols["amount"] = np.array([30.0, 450.0, 1.0, 25.0])
    cols["count_1m"] = np.array([1.0, 1.0, 5.0, 1.0])
    fired = dict(rules.evaluate(cols, ["grocery", "jewelry", "digital_goods", "grocery"]))
    assert fired == {
        0: ["high_score"],
        1: ["risky_category_large_amount"],
        2: ["card_testing"],
    }


# --- cool-down ------------------------------------------------------------------------------


class State:
    """The per-card state's cool-down bookkeeping, as small as it gets."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.suppressed = 0
        self.recorded: list[int] = []

    def in_cooldown(self, event_time_ms: int, cooldown_ms: int) -> bool:
        return self.last is not None and event_time_ms - self.last < cooldown_ms

    def record_alert(self, event_time_ms: int) -> None:
        self.last, self.suppressed = event_time_ms, 0
        self.recorded.append(event_time_ms)


def test_cooldown_suppresses_and_counts() -> None:
    states: dict[str, State] = {}

    def lookup(card: str) -> State:
        return states.setdefault(card, State())

    cards = ["a", "a", "b", "a", "a", "b"]
    times = np.array([0, 30_000, 40_000, 59_999, 60_000, 50_000], dtype=np.int64)
    fired = [(i, [f"rule{i}"]) for i in range(len(cards))]
    kept, suppressed = apply_cooldown(fired, cards, times, lookup, 60_000)
    assert kept == [(0, ["rule0"]), (2, ["rule2"]), (4, ["rule4"])]
    assert suppressed == 3
    assert states["a"].recorded == [0, 60_000]
    assert states["a"].suppressed == 0  # counted twice, then reset by the alert at 60 s
    assert states["b"].suppressed == 1
    assert all(type(t) is int for t in states["a"].recorded)

    kept, suppressed = apply_cooldown([(0, ["x"])], ["a"], [61_000], lookup, 60_000)
    assert (kept, suppressed, states["a"].suppressed) == ([], 1, 1)


def test_cooldown_only_looks_at_fired_rows_and_zero_keeps_all() -> None:
    looked_up: list[str] = []

    def lookup(card: str) -> State:
        looked_up.append(card)
        return State()

    kept, suppressed = apply_cooldown([(2, ["x"])], ["a", "b", "c"], [1, 2, 3], lookup, 10)
    assert (kept, suppressed, looked_up) == ([(2, ["x"])], 0, ["c"])
    assert apply_cooldown([], [], [], lookup, 10) == ([], 0)
    same = State()
    kept, suppressed = apply_cooldown(
        [(0, ["x"]), (1, ["y"])], ["a", "a"], [5, 5], lambda _: same, 0
    )
    assert (len(kept), suppressed) == (2, 0)
    with pytest.raises(ValueError, match="cooldown_ms"):
        apply_cooldown([], [], [], lookup, -1)


def test_module_docs_name_every_feature() -> None:
    doc = stream_app.alerts.__doc__ or ""
    shipped = Path(stream_app.alerts.__file__).with_name("default_rules.toml").read_text()
    for feature in FEATURES:
        assert feature in doc and feature in shipped
