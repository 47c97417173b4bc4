"""Process logging: one line per lifecycle event, as text or as one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object: time (UTC, ISO 8601), level, logger, thread, message and,
    when there is one, the exception with its traceback.

    >>> record = logging.LogRecord("stream_app.x", logging.INFO, "", 0, "assigned %s", ("t:0",),
    ...                            None)
    >>> record.created, record.threadName = 0.0, "scoring-loop"
    >>> print(JsonFormatter().format(record))  # doctest: +NORMALIZE_WHITESPACE
    {"time": "1970-01-01T00:00:00+00:00", "level": "INFO", "logger": "stream_app.x",
     "thread": "scoring-loop", "message": "assigned t:0"}
    """

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def setup_logging(level: int | str, json_lines: bool) -> None:
    """Log records of ``level`` and above to stderr, as JSON lines or as text."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
