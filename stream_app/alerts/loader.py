"""Reading a rules file: TOML in, rules validated by pydantic (:class:`~.rules.Rule`) out.

Every mistake is a :class:`RuleError` naming the file, the rule (its position among the
``[[rule]]`` tables, and its name when it has a valid one), where in the rule (pydantic's
location, e.g. ``all[0].value``) and the reason; a TOML syntax error carries ``tomllib``'s line
and column. The first mistake in file order is reported.
"""

from __future__ import annotations

import tomllib
from typing import Any

from pydantic import ValidationError

from stream_app.alerts.rules import Rule
from stream_app.errors import ConfigError


class RuleError(ConfigError):
    """A rules file cannot be used. ``rule`` names the rule at fault (``rule 2 'big'``), None
    when the mistake is not inside one rule."""

    def __init__(self, source: str, rule: str | None, reason: str) -> None:
        super().__init__(f"{source}: {rule}: {reason}" if rule else f"{source}: {reason}")
        self.source = source
        self.rule = rule
        self.reason = reason


def parse_rules(text: str, source: str) -> tuple[Rule, ...]:
    """The rules of a rules file's text, in file order; ``source`` names the file in errors.

    >>> text = '[[rule]]\\nname = "hi"\\nseverity = "high"\\ndescription = "d"\\n' + (
    ...     'all = [{feature = "score", op = ">=", value = 0.9}]\\n')
    >>> [(r.name, str(r.conditions[0])) for r in parse_rules(text, "r.toml")]
    [('hi', 'score >= 0.9')]
    >>> parse_rules(text.replace('description = "d"', ""), "r.toml")
    Traceback (most recent call last):
    ...
    stream_app.alerts.loader.RuleError: r.toml: rule 1 'hi': description: Field required
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(source, None, f"invalid TOML: {exc}") from exc
    for key in document:
        if key != "rule":
            raise RuleError(source, None, f"unknown top-level key {key!r}: only [[rule]] tables")
    tables = document.get("rule")
    if tables is None:
        raise RuleError(source, None, "no rules: the file holds no [[rule]] table")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RuleError(source, None, "write each rule as a [[rule]] table")
    rules: list[Rule] = []
    first: dict[str, int] = {}
    for number, table in enumerate(tables, start=1):
        name = table.get("name")
        where = f"rule {number} {name!r}" if isinstance(name, str) else f"rule {number}"
        if not table:
            raise RuleError(
                source, where, "empty rule: a rule needs name, severity, description, all"
            )
        try:
            rule = Rule.model_validate(table)
        except ValidationError as exc:
            raise RuleError(source, where, _first_error(exc)) from None
        if rule.name in first:
            reason = f"duplicate rule name {rule.name!r} (first is rule {first[rule.name]})"
            raise RuleError(source, where, reason)
        first[rule.name] = number
        rules.append(rule)
    return tuple(rules)


def _first_error(exc: ValidationError) -> str:
    """pydantic's first error as ``location: message, got value``.

    >>> try:
    ...     Rule.model_validate({"name": "r", "severity": "high", "description": "d",
    ...                          "all": [{"feature": "score", "op": "=>", "value": 0.5}]})
    ... except ValidationError as exc:
    ...     print(_first_error(exc))
    all[0].op: Input should be '>', '>=', '<' or '<=', got '=>'
    """
    error = exc.errors(include_url=False)[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    got = "" if error["type"] in _NO_INPUT else f", got {_shown(error['input'])}"
    return f"{where.lstrip('.')}: {message}{got}" if where else f"{message}{got}"


#: errors whose input is missing, the whole table or array, or already in the message
_NO_INPUT = frozenset({"missing", "value_error", "too_short"})


def _shown(value: Any) -> str:
    return f"a {type(value).__name__}" if isinstance(value, dict | list) else repr(value)
