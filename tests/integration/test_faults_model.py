"""Fault suite: the champion's model file corrupted on disk after its promotion, then the worker
restarted on it: the worker refuses it, falls back to the last champion that loads, says so on
the status topic, and keeps scoring. Ends with the ledger check."""

from __future__ import annotations

import time

import pytest

from stream_app.control.client import StatusReader
from stream_app.control.promotion import promote
from stream_app.devtools.bench.deployment import Deployment
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.processes import ChildProcess, get_json
from tests.integration.conftest import (
    assert_ledger,
    copy_registry,
    producing,
    wait_for,
    wait_until_stored,
)
from tests.integration.faults import STARTUP_S, answered

# a sink process on a chDB directory of its own
pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.local_stack]


def test_model_corrupted_on_disk_after_promotion_then_restart(
    make_settings, two_models, fault_figures, tmp_path
):
    copy_registry(two_models, tmp_path / "models")
    settings = make_settings(
        model_dir=tmp_path / "models", warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}"
    )
    options = ProduceOptions(events=20_000, rate=1000, bad_fraction=0.01, seed=81)
    deployment = Deployment(settings, "corrupt-model", tmp_path)
    try:
        deployment.start(STARTUP_S)
        with producing(deployment.settings, options) as result:
            wait_for(
                lambda: answered(deployment.worker_health)["scored"] >= 1000, STARTUP_S, "scoring"
            )
            assert promote(deployment.settings, "2", timeout_s=STARTUP_S).aliases_moved
            model = tmp_path / "models" / "2" / "model.txt"
            model.write_text(model.read_text()[: model.stat().st_size // 2])  # cut in half
            deployment.workers[0].stop()
            restarted_at = time.monotonic()
            worker = ChildProcess("corrupt-model-worker-2", ["worker"], settings, tmp_path)
            deployment.children[1] = worker
            url = worker.web_url("/health", STARTUP_S)
            after = produce(settings, ProduceOptions(events=2000, bad_fraction=0.01, seed=82))
            wait_for(lambda: (get_json(url) or {}).get("scored", 0) > 0, STARTUP_S, "scoring again")
            fault_figures.recovery_s = round(time.monotonic() - restarted_at, 1)
            assert answered(lambda: get_json(url))["model_version"] == "1"
        report = result["report"]  # and what came after the restart: load for the new worker
        report.valid, report.malformed = (
            report.valid + after.valid,
            report.malformed + after.malformed,
        )
        settings = deployment.settings
        wait_until_stored(settings, report)
        fault_figures.peak_rss("worker", worker.pid)
    finally:
        deployment.stop()
    assert_ledger(settings, report, fault_figures)
    reader = StatusReader(settings)
    try:
        said = [s.reason for s in reader.read_to_end() if s.status == "fallback"]
    finally:
        reader.close()
    assert any("model 2" in reason for reason in said), said
    assert "falling back to model 1, the last champion that loads" in said
