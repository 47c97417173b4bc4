"""``stream-app bench drift --quick``: the JSON document's shape, and the calibrated detectors
beat the dummy floor (an alarm every ``spacing`` events)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stream_app.cli import app

DETECTORS = {
    "error": {"adwin", "hddm_a", "adwin (River default)", "dummy"},
    "score": {"page_hinkley", "dummy"},
    "feature": {"psi", "dummy"},
}
SCENARIOS = {
    ("agrawal abrupt", "error"),
    ("agrawal gradual", "error"),
    ("sea abrupt", "error"),
    ("sea gradual", "error"),
    ("covariate shift", "score"),
    ("covariate shift", "feature"),
    ("generator covariate-shift", "score"),
    ("generator covariate-shift", "feature"),
    ("generator pattern-moves", "error"),
    ("generator new-pattern", "error"),
    ("generator stationary", "score"),
    ("generator stationary", "feature"),
    ("stationary", "error"),
    ("stationary", "score"),
    ("stationary", "feature"),
}


def test_the_quick_drift_bench_writes_every_row_and_beats_the_dummy(tmp_path: Path) -> None:
    path = tmp_path / "drift.json"
    result = CliRunner().invoke(app, ["bench", "drift", "--quick", "--json", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads(path.read_text())

    rows = report["rows"]
    assert {(r["scenario"], r["signal"]) for r in rows} == SCENARIOS
    for scenario, signal in SCENARIOS:
        detectors = {
            r["detector"] for r in rows if (r["scenario"], r["signal"]) == (scenario, signal)
        }
        expected = DETECTORS[signal] | (
            {"page_hinkley (no clip)"}
            if scenario.startswith("generator") and signal == "score"
            else set()
        )
        assert detectors == expected
    seeds, drifts = report["options"]["seeds"], report["options"]["drifts"]
    for row in rows:
        expected = (
            0
            if row["scenario"].endswith("stationary")
            else seeds
            * (1 if "covariate" in row["scenario"] or "generator" in row["scenario"] else drifts)
        )
        assert row["drifts"] == expected
        assert 0 <= row["missed"] <= row["drifts"]
        assert row["events"] > 0
    control = [r for r in rows if r["scenario"] == "stationary"]
    assert all(r["events"] == seeds * report["options"]["control_events"] for r in control)

    dummy = {r["signal"]: r for r in control if r["detector"] == "dummy"}
    assert dummy["error"]["false_alarms_per_100k"] > 10  # the floor alarms all the time
    # ADWIN, Page-Hinkley and PSI beat the floor everywhere; HDDM_A is allowed to miss SEA's
    # mild and short-lived rise of the error rate, but no longer Agrawal's drifts, one of which
    # lowers the error rate (two-sided since; docs/monitors.md)
    # (the generator's schedules are measured, not held to the floor: docs/monitors.md)
    failing = report["targets"]["every detector beats the dummy"]["failing"]
    synthetic = [f for f in failing if not f.startswith("generator ")]
    assert all(f.startswith("sea ") and f.endswith(" / hddm_a") for f in synthetic), failing
    missed = report["targets"]["no abrupt drift missed"]["failing"]
    assert all(f.startswith("sea ") for f in missed), missed
    assert report["targets"][
        "covariate shift of 0.25 sd found within 2,000 events (score or feature)"
    ]["met"]
