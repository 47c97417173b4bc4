"""The sink contract: ``add`` rows, ``flush`` them durably; a batching base asks only ``write``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from stream_app.errors import RowsRefused

Row = Sequence[Any]


class Sink(ABC):
    """A destination for rows of one table. ``flush`` returns only once the rows are durable."""

    @abstractmethod
    def add(self, rows: Sequence[Row]) -> None:
        """Buffer rows; nothing is guaranteed written until ``flush`` returns."""

    @abstractmethod
    def flush(self) -> int:
        """Write everything buffered and return how many rows that was (parked ones not counted)."""

    @abstractmethod
    def discard(self) -> int:
        """Drop the buffered rows (their offsets were not committed: they will be read again)."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Rows buffered and not yet flushed."""

    @property
    @abstractmethod
    def rejected(self) -> int:
        """Rows the destination refused for what they hold, parked aside since the start."""

    def close(self) -> None:  # noqa: B027  # most sinks hold nothing to release
        """Release the destination's connection; called once no row is added any more."""


class BatchingSink(Sink):
    """Buffers rows in memory and hands them to :meth:`write` in one call per flush.

    When ``write`` raises :class:`RowsRefused`, the batch is halved until the refused rows stand
    alone; those go to :meth:`park` and the rest are written. Any other failure keeps every row
    buffered for a later flush (rows written or parked before it may be written again).
    """

    def __init__(self) -> None:
        self._buffer: list[Row] = []
        self._rejected = 0

    def add(self, rows: Sequence[Row]) -> None:
        self._buffer.extend(rows)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    @property
    def rejected(self) -> int:
        return self._rejected

    def discard(self) -> int:
        dropped, self._buffer = len(self._buffer), []
        return dropped

    def flush(self) -> int:
        if not self._buffer:
            return 0
        rows, self._buffer = self._buffer, []
        try:
            return self._write_or_park(rows)
        except BaseException:
            self._buffer = rows + self._buffer  # keep them: the caller may retry
            raise

    def _write_or_park(self, rows: list[Row]) -> int:
        try:
            self.write(rows)
        except RowsRefused as refusal:
            if len(rows) == 1:
                self.park(rows[0], refusal)
                self._rejected += 1
                return 0
            middle = len(rows) // 2
            return self._write_or_park(rows[:middle]) + self._write_or_park(rows[middle:])
        return len(rows)

    @abstractmethod
    def write(self, rows: list[Row]) -> None:
        """Durably write one batch of rows, or raise (:class:`RowsRefused` for refused data)."""

    @abstractmethod
    def park(self, row: Row, refusal: RowsRefused) -> None:
        """Keep a row the destination refused, with the reason, where people can find it."""
