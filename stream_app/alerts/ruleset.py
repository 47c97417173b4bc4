"""An immutable set of alert rules, loaded from a file and evaluated over a whole batch at once."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from stream_app.alerts.loader import RuleError, parse_rules
from stream_app.alerts.rules import SEVERITIES, BoolArray, Rule, Severity

_PACKAGE = "stream_app.alerts"
DEFAULT_RULES_FILE = "default_rules.toml"

#: row index in the batch, names of the rules that fired on it (in file order)
Fired = tuple[int, list[str]]


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Validated rules in file order. Loading again builds a new set; a set never changes, so a
    failed reload leaves the one in use as it was."""

    rules: tuple[Rule, ...] = ()
    source: str = "<rules>"
    #: the columns :meth:`evaluate` reads, sorted (computed once: a set never changes)
    _columns: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [rule.name for rule in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be unique: {names}")
        columns = frozenset().union(*(rule.features for rule in self.rules))
        object.__setattr__(self, "_columns", tuple(sorted(columns)))

    @classmethod
    def load(cls, path: str | Path) -> RuleSet:
        """Read and validate a rules file; raises :class:`RuleError`, also for anything that is
        not a regular file (a FIFO would block its reader until someone writes to it)."""
        try:
            text = _read_regular_file(Path(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(str(path), None, f"cannot read the rules file: {exc}") from exc
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<string>") -> RuleSet:
        """Validate the text of a rules file; ``source`` names it in errors."""
        return cls(parse_rules(text, source), source)

    @classmethod
    def default(cls) -> RuleSet:
        """The rules shipped with the package (``stream_app/alerts/default_rules.toml``)."""
        text = resources.files(_PACKAGE).joinpath(DEFAULT_RULES_FILE).read_text("utf-8")
        return cls.parse(text, f"{_PACKAGE}/{DEFAULT_RULES_FILE}")

    def reload(self, path: str | Path) -> RuleSet:
        """The rules of ``path`` as a new set. On error raises :class:`RuleError`; this set is
        untouched either way, so the caller keeps using it until a load succeeds."""
        return type(self).load(path)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def rule(self, name: str) -> Rule:
        """The rule called ``name`` (severity and description for an alert); KeyError if none."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)

    def severity(self, names: Sequence[str]) -> Severity:
        """The highest severity among the rules called ``names`` (those that fired on an event).

        >>> RuleSet.default().severity(["amount_spike", "high_score"])
        'high'
        """
        return max((self.rule(name).severity for name in names), key=SEVERITIES.index)

    @property
    def features(self) -> frozenset[str]:
        """The columns :meth:`evaluate` needs."""
        return frozenset(self._columns)

    def evaluate(
        self, columns: Mapping[str, np.ndarray], merchant_category: Sequence[str]
    ) -> list[Fired]:
        """For every row where at least one rule fired, the row index and the names of the rules
        that fired, in file order.

        ``columns`` holds one array per feature in :attr:`features` (``score``, ``amount``,
        velocity features), as long as ``merchant_category``; NaN never satisfies a comparison.
        A missing or mis-sized column is the caller's bug: ValueError.

        >>> rules = RuleSet.parse('''
        ... [[rule]]
        ... name = "high_score"
        ... severity = "high"
        ... description = "very likely fraud"
        ... all = [{feature = "score", op = ">=", value = 0.9}]
        ... ''')
        >>> rules.evaluate({"score": np.array([0.95, 0.2, np.nan, 0.9])}, ["a", "b", "c", "d"])
        [(0, ['high_score']), (3, ['high_score'])]
        """
        rows = len(merchant_category)
        for feature in self._columns:
            column = columns.get(feature)
            if column is None:
                raise ValueError(f"evaluate needs a {feature!r} column")
            if column.shape != (rows,):
                raise ValueError(f"column {feature!r} has shape {column.shape}, expected ({rows},)")
        if rows == 0 or not self.rules:
            return []
        category_in = CategoryIndex(merchant_category)
        # each rule's rows gathered in Python: rules fire on few rows, and a matrix of every
        # rule's mask with its reductions costs more numpy calls per batch than the rows take
        fired: dict[int, list[str]] = {}
        for rule in self.rules:
            mask = rule.fires(columns, category_in)
            for row in mask.nonzero()[0].tolist():
                fired.setdefault(row, []).append(rule.name)
        return sorted(fired.items())


def _read_regular_file(path: Path) -> str:
    """The text of ``path``, opened without blocking and refused unless it is a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait for a writer
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RuleError(str(path), None, "not a regular file: refused (rules must be a file)")
        return handle.read().decode("utf-8")


class CategoryIndex:
    """Per-row membership of a batch's merchant categories in a set of categories: the
    categories become integer codes once per batch (on first use), each set is then one
    vectorised lookup.

    >>> category_in = CategoryIndex(["jewelry", "grocery", "jewelry", "atm"])
    >>> category_in(frozenset({"jewelry", "atm"})).tolist()
    [True, False, True, True]
    """

    def __init__(self, categories: Sequence[str]) -> None:
        self._categories = categories
        self._index: dict[str, int] = {}
        self._codes: np.ndarray | None = None

    def __call__(self, allowed: frozenset[str]) -> BoolArray:
        if self._codes is None:
            index = self._index
            self._codes = np.fromiter(
                (index.setdefault(c, len(index)) for c in self._categories),
                dtype=np.intp,
                count=len(self._categories),
            )
        # a lookup table by code: np.isin costs tens of µs on a small batch, this two numpy calls
        wanted = np.fromiter(
            (name in allowed for name in self._index), dtype=np.bool_, count=len(self._index)
        )
        found: BoolArray = wanted[self._codes]
        return found
