"""The demo, small: starts everything, streams, summarises from SQL, stops everything."""

from __future__ import annotations

import pytest
from rich.console import Console

from stream_app.devtools.demo import Demo, DemoOptions

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]


def test_demo_streams_summarises_and_stops_everything(tmp_path):
    console = Console(record=True, width=160)
    demo = Demo(DemoOptions(events=3000, bad_fraction=0.02, state_dir=tmp_path), console)
    demo.run()
    text = console.export_text()
    for title in ("Predictions per model version", "Score distribution", "Highest-scored cards",
                  "Alerts per rule", "Dead letters by reason", "stream-app sql"):  # fmt: skip
        assert title in text, title
    line = next(line for line in text.splitlines() if line.startswith("produced") and "+" in line)
    # "produced V valid (F fraud) + M malformed; stored V predictions + M dead letters"
    words = line.replace(",", "").split()
    valid, malformed = int(words[1]), int(words[6])
    assert valid + malformed == 3000 and malformed > 0
    assert f"stored {valid} predictions + {malformed} dead letters" in line.replace(",", "")
    assert all(not child.alive() for child in demo.children)
    assert demo.stack.broker is not None
    assert not demo.stack.broker.running
