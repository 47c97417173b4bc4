"""The rows of several scored batches that the drift monitors read in one pass.

Only the columns the monitors read are concatenated (partition, score, features: numpy copies;
the event times only while a partition's score monitor warms up); the columns a detection's
record needs (offset, event time) are looked up in the row's own batch, so holding rows back
costs no work per row in Python.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stream_app.events import FloatArray, IntArray
from stream_app.scoring.observers import ScoredEvents


@dataclass(frozen=True)
class HeldRows:
    """The rows of ``parts`` (scored by one champion) in order, as the monitors read them.

    >>> def part(partitions: list[int], offsets: list[int]) -> ScoredEvents:
    ...     n, empty = len(partitions), [""] * len(partitions)
    ...     return ScoredEvents(
    ...         empty, empty, np.arange(n), partitions, offsets, np.zeros((n, 2)),
    ...         np.full(n, 0.5), empty, "v1", None, None
    ...     )
    >>> rows = HeldRows.of([part([0, 1], [10, 20]), part([1], [21])])
    >>> rows.partition.tolist(), len(rows), rows.offset(2), rows.event_time(2)
    ([0, 1, 1], 3, 21, 0)
    >>> rows.event_times.tolist()
    [0, 1, 0]
    """

    parts: Sequence[ScoredEvents]
    partition: IntArray
    score: FloatArray
    features: FloatArray
    #: the row after each part's last
    ends: list[int]

    @classmethod
    def of(cls, parts: Sequence[ScoredEvents]) -> HeldRows:
        """The rows of ``parts``, in order (at least one part)."""
        if len(parts) == 1:
            (only,) = parts
            return cls(parts, np.asarray(only.partition), only.score, only.features, [len(only)])
        return cls(
            parts,
            np.concatenate([np.asarray(part.partition) for part in parts]),
            np.concatenate([part.score for part in parts]),
            np.concatenate([part.features for part in parts]),
            list(itertools.accumulate(len(part) for part in parts)),
        )

    @property
    def model_version(self) -> str:
        return self.parts[0].model_version

    def __len__(self) -> int:
        return self.ends[-1]

    @cached_property
    def event_times(self) -> IntArray:
        """The event times (ms) of every row, concatenated on first use."""
        return np.concatenate([np.asarray(part.event_time, dtype=np.int64) for part in self.parts])

    def offset(self, row: int) -> int:
        """The input offset of ``row``."""
        part, i = self._locate(row)
        return part.offset[i]

    def event_time(self, row: int) -> int:
        """The event time (ms) of ``row``."""
        part, i = self._locate(row)
        return int(part.event_time[i])

    def _locate(self, row: int) -> tuple[ScoredEvents, int]:
        k = bisect.bisect_right(self.ends, row)
        return self.parts[k], row - (self.ends[k - 1] if k else 0)
