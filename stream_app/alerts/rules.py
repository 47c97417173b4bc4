"""One alert rule: conditions on a row's score, amount and per-card features, and two filters.

A rule fires on a row when every condition in ``all`` holds, the row's merchant category is in
``merchant_category`` (when given) and ``amount_min <= amount <= amount_max`` (each bound when
given, both inclusive). Every comparison with NaN is false, so a missing feature never fires a
rule.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from stream_app.state import VELOCITY_FEATURES

BoolArray = npt.NDArray[np.bool_]
Compare = Callable[[np.ndarray, float], BoolArray]

#: every feature a condition may name: the model's score, the event's amount, velocity features
FEATURES: tuple[str, ...] = ("score", "amount", *VELOCITY_FEATURES)
OPERATORS: Mapping[str, Compare] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")


def feature_range(feature: str) -> tuple[float, float]:
    """The closed interval a threshold on ``feature`` must lie in: a probability for the score,
    a non-negative number for everything else.

    >>> feature_range("score"), feature_range("count_1m")
    ((0.0, 1.0), (0.0, inf))
    """
    return (0.0, 1.0) if feature == "score" else (0.0, float("inf"))


@dataclass(frozen=True, slots=True)
class Condition:
    """``feature op value``, e.g. ``count_1h > 3``."""

    feature: str
    op: str
    value: float

    def __str__(self) -> str:
        """The condition as it reads in a rule file.

        >>> str(Condition("count_1h", ">", 3.0))
        'count_1h > 3'
        """
        return f"{self.feature} {self.op} {self.value:g}"

    def holds(self, columns: Mapping[str, np.ndarray]) -> BoolArray:
        """Where the condition holds, row by row (false where the feature is NaN).

        >>> Condition("score", ">=", 0.5).holds({"score": np.array([0.5, 0.4, np.nan])}).tolist()
        [True, False, False]
        """
        return OPERATORS[self.op](columns[self.feature], self.value)


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule; ``line`` is the line of its ``[[rule]]`` header in the rules file."""

    name: str
    severity: Severity
    description: str
    conditions: tuple[Condition, ...]
    merchant_category: frozenset[str] | None = None
    amount_min: float | None = None
    amount_max: float | None = None
    line: int = 0

    @property
    def features(self) -> frozenset[str]:
        """The columns the rule reads (``amount`` too when it has an amount band)."""
        names = {c.feature for c in self.conditions}
        if self.amount_min is not None or self.amount_max is not None:
            names.add("amount")
        return frozenset(names)

    def fires(
        self, columns: Mapping[str, np.ndarray], category_in: Callable[[frozenset[str]], BoolArray]
    ) -> BoolArray:
        """Where the rule fires. ``category_in(categories)`` answers, per row, whether the row's
        merchant category is one of ``categories`` (computed once per batch by the caller)."""
        conditions = iter(self.conditions)
        mask = next(conditions).holds(columns)
        for condition in conditions:
            mask &= condition.holds(columns)
        if self.amount_min is not None:
            mask &= columns["amount"] >= self.amount_min
        if self.amount_max is not None:
            mask &= columns["amount"] <= self.amount_max
        if self.merchant_category is not None:
            mask &= category_in(self.merchant_category)
        return mask
