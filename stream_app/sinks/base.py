"""The sink contract: ``add`` rows, ``flush`` them durably; a batching base asks only ``write``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

Row = Sequence[Any]


class Sink(ABC):
    """A destination for rows of one table. ``flush`` returns only once the rows are durable."""

    @abstractmethod
    def add(self, rows: Sequence[Row]) -> None:
        """Buffer rows; nothing is guaranteed written until ``flush`` returns."""

    @abstractmethod
    def flush(self) -> int:
        """Write everything buffered and return how many rows that was."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Rows buffered and not yet flushed."""


class BatchingSink(Sink):
    """Buffers rows in memory and hands them to :meth:`write` in one call per flush."""

    def __init__(self) -> None:
        self._buffer: list[Row] = []

    def add(self, rows: Sequence[Row]) -> None:
        self._buffer.extend(rows)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> int:
        if not self._buffer:
            return 0
        rows, self._buffer = self._buffer, []
        try:
            self.write(rows)
        except BaseException:
            self._buffer = rows + self._buffer  # keep them: the caller may retry
            raise
        return len(rows)

    @abstractmethod
    def write(self, rows: list[Row]) -> None:
        """Durably write one batch of rows, or raise."""
