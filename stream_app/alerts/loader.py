"""Reading a rules file: TOML in, validated :class:`~stream_app.alerts.rules.Rule` objects out.

Every mistake is a :class:`RuleError` naming the file, the line of the offending rule's
``[[rule]]`` header (or the line ``tomllib`` reports for a syntax error) and the reason. The first
mistake in file order is reported.
"""

from __future__ import annotations

import math
import re
import tomllib
from datetime import date, datetime, time
from typing import Any

from stream_app.alerts.rules import (
    FEATURES,
    OPERATORS,
    SEVERITIES,
    Condition,
    Rule,
    Severity,
    feature_range,
)
from stream_app.alerts.toml_lines import (
    rule_header_lines,
    statement_lines,
    syntax_error_position,
    top_level_key_line,
)
from stream_app.errors import ConfigError

RULE_KEYS = (
    "name",
    "severity",
    "description",
    "all",
    "merchant_category",
    "amount_min",
    "amount_max",
)
REQUIRED_KEYS = ("name", "severity", "description", "all")
CONDITION_KEYS = ("feature", "op", "value")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")
_SEVERITY: dict[str, Severity] = {s: s for s in SEVERITIES}


class RuleError(ConfigError):
    """A rules file cannot be used. ``line`` is None when the file could not be read at all."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        super().__init__(
            f"{source}:{line}: {reason}" if line is not None else f"{source}: {reason}"
        )
        self.source = source
        self.line = line
        self.reason = reason


class _Invalid(Exception):
    """A reason a rule table is wrong; the caller adds file and line."""


def parse_rules(text: str, source: str) -> tuple[Rule, ...]:
    """The rules of a rules file's text, in file order; ``source`` names the file in errors.

    >>> text = '[[rule]]\\nname = "hi"\\nseverity = "high"\\ndescription = "d"\\n' + (
    ...     'all = [{feature = "score", op = ">=", value = 0.9}]\\n')
    >>> [(r.name, r.line, str(r.conditions[0])) for r in parse_rules(text, "r.toml")]
    [('hi', 1, 'score >= 0.9')]
    >>> parse_rules(text.replace('description = "d"', ""), "r.toml")
    Traceback (most recent call last):
    ...
    stream_app.alerts.loader.RuleError: r.toml:1: rule 'hi': missing key 'description'
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, reason = syntax_error_position(str(exc), text)
        raise RuleError(source, line, f"invalid TOML: {reason}") from exc
    statements = statement_lines(text)
    for key in document:
        if key != "rule":
            line = top_level_key_line(statements, key)
            raise RuleError(source, line, f"unknown top-level key {key!r}: only [[rule]] tables")
    tables = document.get("rule")
    if tables is None:
        raise RuleError(source, 1, "no rules: the file holds no [[rule]] table")
    headers = rule_header_lines(statements)
    if not isinstance(tables, list) or len(headers) != len(tables):
        line = top_level_key_line(statements, "rule")
        raise RuleError(source, line, "write each rule as a [[rule]] table")
    rules: list[Rule] = []
    first_line: dict[str, int] = {}
    for table, line in zip(tables, headers, strict=True):
        name = table.get("name")
        where = f"rule {name!r}: " if isinstance(name, str) else ""
        try:
            rule = _rule(table, line)
        except _Invalid as exc:
            raise RuleError(source, line, f"{where}{exc}") from None
        if rule.name in first_line:
            reason = f"duplicate rule name {rule.name!r} (first at line {first_line[rule.name]})"
            raise RuleError(source, line, reason)
        first_line[rule.name] = line
        rules.append(rule)
    return tuple(rules)


def _rule(table: dict[str, Any], line: int) -> Rule:
    if not table:
        raise _Invalid("empty rule: a rule needs " + ", ".join(REQUIRED_KEYS))
    for key in table:
        if key not in RULE_KEYS:
            raise _Invalid(f"unknown key {key!r} (allowed: {', '.join(RULE_KEYS)})")
    for key in REQUIRED_KEYS:
        if key not in table:
            raise _Invalid(f"missing key {key!r}")
    name = _string(table["name"], "name")
    if not _NAME.fullmatch(name):
        raise _Invalid(f"name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    severity = _SEVERITY.get(_string(table["severity"], "severity"))
    if severity is None:
        raise _Invalid(
            f"severity must be one of {', '.join(SEVERITIES)}, got {table['severity']!r}"
        )
    amount_min = _amount(table, "amount_min")
    amount_max = _amount(table, "amount_max")
    if amount_min is not None and amount_max is not None and amount_min > amount_max:
        raise _Invalid(f"amount_min ({amount_min:g}) is above amount_max ({amount_max:g})")
    return Rule(
        name=name,
        severity=severity,
        description=_string(table["description"], "description"),
        conditions=_conditions(table["all"]),
        merchant_category=_categories(table.get("merchant_category")),
        amount_min=amount_min,
        amount_max=amount_max,
        line=line,
    )


def _conditions(value: Any) -> tuple[Condition, ...]:
    if not isinstance(value, list):
        raise _Invalid(f"all must be an array of conditions, got {_toml_type(value)}")
    if not value:
        raise _Invalid("empty rule: all holds no condition")
    return tuple(_condition(item, f"all[{i}]") for i, item in enumerate(value))


def _condition(item: Any, where: str) -> Condition:
    if not isinstance(item, dict):
        raise _Invalid(f"{where} must be a table {{feature, op, value}}, got {_toml_type(item)}")
    for key in item:
        if key not in CONDITION_KEYS:
            raise _Invalid(f"{where}: unknown key {key!r} (allowed: {', '.join(CONDITION_KEYS)})")
    for key in CONDITION_KEYS:
        if key not in item:
            raise _Invalid(f"{where}: missing key {key!r}")
    feature = _string(item["feature"], f"{where}.feature")
    if feature not in FEATURES:
        raise _Invalid(f"{where}: unknown feature {feature!r} (known: {', '.join(FEATURES)})")
    op = _string(item["op"], f"{where}.op")
    if op not in OPERATORS:
        raise _Invalid(f"{where}: unknown operator {op!r} (known: {' '.join(OPERATORS)})")
    value = _number(item["value"], f"{where}.value")
    low, high = feature_range(feature)
    if not low <= value <= high:
        interval = f"[{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
        raise _Invalid(
            f"{where}: threshold {value:g} out of range for {feature} (must be {interval})"
        )
    return Condition(feature, op, value)


def _categories(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise _Invalid("merchant_category must be a non-empty array of strings")
    return frozenset(_string(item, "merchant_category[]") for item in value)


def _amount(table: dict[str, Any], key: str) -> float | None:
    if key not in table:
        return None
    amount = _number(table[key], key)
    if amount < 0:
        raise _Invalid(f"{key} {amount:g} out of range (must be >= 0)")
    return amount


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{what} must be a string, got {_toml_type(value)}")
    if not value.strip():
        raise _Invalid(f"{what} must not be empty")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{what} must be a number, got {_toml_type(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise _Invalid(f"{what} is too large, got {value}") from None
    if not math.isfinite(number):
        raise _Invalid(f"{what} must be finite, got {value}")
    return number


def _toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type, for messages.

    >>> [_toml_type(v) for v in (True, 1, 1.5, "s", [], {})]
    ['boolean', 'integer', 'float', 'string', 'array', 'table']
    """
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (list, "array"),
        (dict, "table"),
        ((datetime, date, time), "date/time"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)
