"""``stream-app status`` draws one screen from whatever parts it could read."""

from __future__ import annotations

import io
import re

from rich.console import Console

from stream_app.cli_status import render


def screen(status: dict[str, object]) -> str:
    out = io.StringIO()
    render(status, Console(file=out, width=200))
    return out.getvalue()


def test_every_part_shown_and_an_unreadable_part_says_why():
    text = screen(
        {
            "lag": {"error": "broker down"},
            "workers": [
                {
                    "worker_id": "w-1",
                    "live": True,
                    "champion": "3",
                    "challenger": None,
                    "last_status": "alive",
                    "seconds_since_last_status": 1.5,
                }
            ],
            "aliases": {"champion": "3"},
            "last_drift": {"detector": "adwin", "feature": "amount"},
            "last_retrain": None,
            "sink": {"status": "not answering", "url": "http://127.0.0.1:8124"},
        }
    )
    assert "lag unknown: broker down" in text
    assert "w-1" in text and "alive" in text
    assert "aliases: champion=3" in text
    assert "last drift: detector=adwin, feature=amount" in text
    assert "last retrain: none" in text
    assert "sink: not answering at http://127.0.0.1:8124" in text


def test_lag_summed_per_group_and_topic():
    text = screen(
        {
            "lag": {"workers": {"transactions": {0: 5, 1: 7}}},
            "workers": {"error": "no status topic"},
            "aliases": {},
            "last_drift": {"error": "no sink"},
            "last_retrain": None,
            "sink": {"status": "ok", "ready": "ready", "reasons": [], "consumed": 10,
                     "flushes": 2, "failed_inserts": 0},
        }
    )  # fmt: skip
    assert "workers unknown: no status topic" in text
    assert "aliases: none" in text and "last drift: unknown (no sink)" in text
    assert "sink: ok, ready, 10 consumed, 2 flushes, 0 failed inserts" in text
    row = next(line for line in text.splitlines() if "transactions" in line)
    assert re.search(r"workers\W+transactions\W+2\W+12\W", row), row
