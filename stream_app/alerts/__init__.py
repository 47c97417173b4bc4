"""Alert rules: configuration, not code. A TOML file of ``[[rule]]`` tables, validated at load,
evaluated over a whole batch with numpy; a per-card cool-down then suppresses repeats.

The rules file
--------------

Each rule is one ``[[rule]]`` table with these keys (nothing else is accepted)::

    [[rule]]
    name = "risky_category_large_amount"    # required, unique: letters, digits, _ . - (max 64)
    severity = "medium"                      # required: "low", "medium" or "high"
    description = "Likely fraud, large amount in a category fraudsters favour"   # required
    all = [                                  # required, at least one condition; ALL must hold
        { feature = "score", op = ">=", value = 0.5 },
    ]
    merchant_category = ["electronics", "jewelry"]   # optional: the row's category is one of these
    amount_min = 200.0                               # optional: amount >= amount_min (inclusive)
    amount_max = 5000.0                              # optional: amount <= amount_max (inclusive)

A condition is ``{ feature = ..., op = ..., value = ... }``:

- ``feature``: ``score`` (the model's score), ``amount``, or a per-card velocity feature:
  ``count_1m``, ``sum_1m``, ``count_1h``, ``sum_1h``, ``count_24h``, ``sum_24h``,
  ``distinct_merchants_1h``, ``seconds_since_previous``, ``amount_to_mean``;
- ``op``: ``>``, ``>=``, ``<`` or ``<=``;
- ``value``: a finite number, in [0, 1] for ``score`` and >= 0 for every other feature.

A score threshold, a velocity rule and a combination are all the same shape: one condition or
several in ``all``. A rule fires on a row when every condition holds and the row passes both
filters; a comparison with NaN (a feature the row does not have) is false, so it never fires a
rule. Categories match exactly (case-sensitive). The file holds only ``[[rule]]`` tables and at
least one of them. ``default_rules.toml`` next to this module is the default set, commented.

Using it
--------

``RuleSet.load(path)`` (or ``RuleSet.default()``) validates and returns an immutable set;
any mistake raises :class:`RuleError` (a ``ConfigError``) as ``file: rule N 'name': where: reason``
(``where`` is pydantic's location in the rule, e.g. ``all[0].value``); a TOML syntax error carries
its line and column.
``rules.reload(path)`` returns a new set or raises, leaving ``rules`` as it was.
``rules.evaluate(columns, merchant_category)`` returns ``[(row, [rule names]), ...]`` for the rows
where a rule fired, and :func:`apply_cooldown` drops the rows of cards in cool-down.
"""

from stream_app.alerts.cooldown import CooldownState, apply_cooldown
from stream_app.alerts.loader import RuleError
from stream_app.alerts.rules import FEATURES, OPERATORS, SEVERITIES, Condition, Rule, Severity
from stream_app.alerts.ruleset import Fired, RuleSet

__all__ = [
    "FEATURES",
    "OPERATORS",
    "SEVERITIES",
    "Condition",
    "CooldownState",
    "Fired",
    "Rule",
    "RuleError",
    "RuleSet",
    "Severity",
    "apply_cooldown",
]
