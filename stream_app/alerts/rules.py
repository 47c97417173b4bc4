"""One alert rule: conditions on a row's score, amount and per-card features, and two filters.

A rule fires on a row when every condition in ``all`` holds, the row's merchant category is in
``merchant_category`` (when given) and ``amount_min <= amount <= amount_max`` (each bound when
given, both inclusive). Every comparison with NaN is false, so a missing feature never fires a
rule.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from stream_app.state import VELOCITY_FEATURES

BoolArray = npt.NDArray[np.bool_]
Compare = Callable[[np.ndarray, float], BoolArray]

#: every feature a condition may name: the model's score, the event's amount, velocity features
FEATURES: tuple[str, ...] = ("score", "amount", *VELOCITY_FEATURES)
Operator = Literal[">", ">=", "<", "<="]
OPERATORS: Mapping[str, Compare] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")


def feature_range(feature: str) -> tuple[float, float]:
    """The closed interval a threshold on ``feature`` must lie in: a probability for the score,
    a non-negative number for everything else.

    >>> feature_range("score"), feature_range("count_1m")
    ((0.0, 1.0), (0.0, inf))
    """
    return (0.0, 1.0) if feature == "score" else (0.0, float("inf"))


def _known_feature(feature: str) -> str:
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r} (known: {', '.join(FEATURES)})")
    return feature


def _rule_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError("must be 1-64 letters, digits, '_', '.' or '-'")
    return name


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


#: a finite number; an integer is taken as a float, a string or a boolean is refused
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Amount = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]


class Condition(BaseModel):
    """``feature op value``, e.g. ``count_1h > 3``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature: Annotated[str, AfterValidator(_known_feature)]
    op: Operator
    value: Number

    @model_validator(mode="after")
    def _value_in_range(self) -> Condition:
        low, high = feature_range(self.feature)
        if not low <= self.value <= high:
            interval = f"[{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
            raise ValueError(
                f"threshold {self.value:g} out of range for {self.feature} (must be {interval})"
            )
        return self

    def __str__(self) -> str:
        """The condition as it reads in a rule file.

        >>> str(Condition(feature="count_1h", op=">", value=3.0))
        'count_1h > 3'
        """
        return f"{self.feature} {self.op} {self.value:g}"

    def holds(self, columns: Mapping[str, np.ndarray]) -> BoolArray:
        """Where the condition holds, row by row (false where the feature is NaN).

        >>> condition = Condition(feature="score", op=">=", value=0.5)
        >>> condition.holds({"score": np.array([0.5, 0.4, np.nan])}).tolist()
        [True, False, False]
        """
        return OPERATORS[self.op](columns[self.feature], self.value)


class Rule(BaseModel):
    """A validated rule: one ``[[rule]]`` table of a rules file (its conditions under ``all``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, AfterValidator(_rule_name)]
    severity: Severity
    description: Annotated[str, AfterValidator(_not_blank)]
    conditions: tuple[Condition, ...] = Field(alias="all", min_length=1)
    merchant_category: frozenset[str] | None = Field(default=None, min_length=1)
    amount_min: Amount | None = None
    amount_max: Amount | None = None

    @model_validator(mode="after")
    def _band_in_order(self) -> Rule:
        low, high = self.amount_min, self.amount_max
        if low is not None and high is not None and low > high:
            raise ValueError(f"amount_min ({low:g}) is above amount_max ({high:g})")
        return self

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
