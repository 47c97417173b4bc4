"""The retraining job on the real broker and warehouse: the sink serves the labelled window as
Arrow from its endpoint (its own chDB directory, as in production), workers score live traffic.

The champion learnt the stream's fraud from more data than a candidate gets from the window. A
stream with a scheduled concept drift (risky-abroad fraud moves to other categories, countries
and amounts half-way) gives a candidate that passes the gate and runs in shadow on every live
worker; the same stream without drift gives a candidate the gate refuses (it is no better), and
no worker's models change. Both runs are ``retrain_runs`` rows. The streams and the trainer are
seeded and deterministic, so the decisions are too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import ExitStack

import pytest

from models.registry import CHALLENGER, CHAMPION
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.processes import settings_env
from stream_app.retraining.job import retrain
from stream_app.scoring.build import build_loop
from stream_app.warehouse.sql import query_rows
from tests.integration.conftest import count, in_thread, sink_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]

EVENTS = 30_000
RETRAIN = {"retrain_min_frauds": 200, "retrain_num_trees": 100, "quality_top_k": 100}
COLUMNS = (
    "run_id, trigger, decision, candidate_version, champion_version, train_rows, holdout_frauds, "
    "candidate_roc_auc, champion_roc_auc, p_value, reason"
)


def stored_stream(settings, drift: str) -> None:
    report = produce(
        settings,
        ProduceOptions(events=EVENTS, seed=7, fraud_rate=0.05, labels=True, drift=drift),
    )
    wait_for(
        lambda: (
            count(settings, "SELECT count() FROM events") == report.valid
            and count(settings, "SELECT count() FROM labels") == report.labels
        ),
        180,
        "every event and label stored",
    )


def runs(settings, expected: int) -> list[dict]:
    wait_for(lambda: count(settings, "SELECT count() FROM retrain_runs") >= expected, 60, "runs")
    names, rows = query_rows(settings, f"SELECT {COLUMNS} FROM retrain_runs")  # noqa: S608
    return [dict(zip(names, row, strict=True)) for row in rows]


def test_a_drifted_stream_gives_a_candidate_that_every_live_worker_scores_in_shadow(
    make_settings, drift_champion, tmp_path
):
    sink, settings, registry = sink_process(make_settings, drift_champion, tmp_path, **RETRAIN)
    workers = [
        settings.model_copy(update={"worker_id": f"{settings.worker_id}-{i}"}) for i in (1, 2)
    ]
    try:
        with ExitStack() as stack:
            running = [stack.enter_context(in_thread(build_loop(w))) for w in workers]
            stored_stream(settings, "pattern-moves")
            wait_for(lambda: all(r.loop.stats.assigned for r in running), 60, "assignments")
            # the job in a process of its own, as `stream-app retrain` runs it
            job = subprocess.run(
                [sys.executable, "-m", "stream_app", "retrain"],
                env={**os.environ, **settings_env(settings)},
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert job.returncode == 0, job.stderr
            (run,) = runs(settings, 1)
            version = run["candidate_version"]
            assert run["decision"] == "challenger", run
            assert all(r.loop.switch.models.versions == ("1", version) for r in running)
        assert (run["trigger"], run["champion_version"]) == ("manual", "1")
        assert run["holdout_frauds"] >= RETRAIN["retrain_min_frauds"]
        assert run["candidate_roc_auc"] > run["champion_roc_auc"] + 0.01
        assert run["p_value"] < 0.05
        assert registry.aliases() == {CHAMPION: "1", CHALLENGER: version}
        assert registry.metadata(version).training["run_id"] == run["run_id"]
    finally:
        assert sink.stop() == 0


def test_a_stream_without_drift_gives_a_refusal_and_leaves_the_workers_as_they_were(
    make_settings, drift_champion, tmp_path
):
    sink, settings, registry = sink_process(make_settings, drift_champion, tmp_path, **RETRAIN)
    try:
        with in_thread(build_loop(settings)) as running:
            stored_stream(settings, "none")
            wait_for(lambda: running.loop.stats.assigned, 60, "assignment")
            record = retrain(settings)
            assert running.loop.switch.models.versions == ("1", None)
        (run,) = runs(settings, 1)
        assert run["decision"] == record["decision"] == "refused", run
        assert "not better by more than 0.01" in run["reason"]
        assert run["candidate_version"] == record["candidate_version"] == "2"  # registered
        assert registry.aliases() == {CHAMPION: "1"}
    finally:
        assert sink.stop() == 0
