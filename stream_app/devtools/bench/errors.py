"""The benchmark's own error type."""

from __future__ import annotations

from stream_app.errors import StreamAppError


class BenchError(StreamAppError):
    """A phase of the benchmark could not run or did not finish in time."""
