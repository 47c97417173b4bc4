"""The loop closes by itself, on the real broker and warehouse: the retrainer turns a drift
detection into a training run, shadows the passing candidate on live traffic, promotes it on
every worker and watches it; the same stream without drift leads to no promotion.

The drifted stream's risky-abroad fraud moves half-way (a concept drift a candidate can learn
and the champion cannot). The monitors of this champion also alarm on the stream without drift
(score and amount monitors, from its first thousand events): on both streams the first
detection starts a run, and the gate tells them apart. Streams and trainer are seeded, so the
decisions are deterministic. The shadow and watch periods are later streams of the drifted
regime.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack
from dataclasses import replace

import pytest
from confluent_kafka import Producer

from models.registry import CHAMPION
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.devtools.demo_drift import MOVED
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import producer_config
from stream_app.processes import ChildProcess
from stream_app.retraining.job import CHALLENGER_SET, Trigger, retrain
from stream_app.retraining.metrics import RetrainerStats
from stream_app.retraining.patience import Patience
from stream_app.retraining.queries import RetrainError
from stream_app.retraining.rollout import follow
from stream_app.retraining.service import RetrainerLoop
from stream_app.scoring.build import build_loop
from stream_app.timing import now_ms
from stream_app.warehouse.sql import query_rows
from tests.integration.conftest import (
    count,
    in_thread,
    sink_process,
    stored_counts,
    wait_for,
    wait_until_stored,
)
from tests.integration.test_observability import SQL_TOKEN, body, scrape, total

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]

LOOP = {
    "retrain_min_frauds": 200,
    "retrain_num_trees": 100,
    "quality_top_k": 100,
    "retrainer_min_new_frauds": 200,
    "retrain_shadow_events": 12_000,
    "retrain_shadow_min_frauds": 1_100,
    "retrain_watch_events": 12_000,
    "retrain_shadow_timeout_s": 120.0,
    # the runs start on the monitors' first detections, the score monitor's among them, early in
    # a fresh worker's stream of 5 hours of event time: no warm-up (docs/monitors.md)
    "drift_score_warmup_s": 0.0,
}


def stream(settings, events: int, seed: int, drift: str) -> None:
    """Produce ``events`` with their labels; wait until every event and label is stored."""
    before = stored_counts(settings)
    report = produce(
        settings,
        ProduceOptions(events=events, seed=seed, fraud_rate=0.05, labels=True, drift=drift),
    )
    wait_until_stored(settings, report, 180, since=before)


def rows(settings, query: str) -> list[dict]:
    names, values = query_rows(settings, query)
    return [dict(zip(names, row, strict=True)) for row in values]


def decided(settings) -> list[dict]:
    """The decisions recorded so far, for an assertion's message."""
    return rows(
        settings, "SELECT trigger, decision, reason FROM retrain_runs ORDER BY started_time"
    )


def rollout_steps(settings) -> list[dict]:
    """The rollout's rows (shadow, watch) of the training runs, in order."""
    return rows(settings, "SELECT * FROM retrain_runs WHERE parent_run_id != ''"
                          " ORDER BY started_time")  # fmt: skip


def test_a_drift_detection_leads_to_a_run_a_shadow_period_and_a_promotion_on_every_worker(
    make_settings, drift_champion, tmp_path
):
    sink, settings, registry = sink_process(make_settings, drift_champion, tmp_path, **LOOP)
    (tmp_path / "moved.toml").write_text(MOVED)
    workers = [
        settings.model_copy(update={"worker_id": f"{settings.worker_id}-{i}"}) for i in (1, 2)
    ]
    try:
        with ExitStack() as stack:
            running = [stack.enter_context(in_thread(build_loop(w))) for w in workers]
            stream(settings, 30_000, 7, "pattern-moves")
            wait_for(lambda: count(settings, "SELECT count() FROM drift_events") > 0, 60, "drift")
            retrainer = stack.enter_context(in_thread(RetrainerLoop(settings))).loop
            wait_for(lambda: retrainer.decisions, 300, "a training run")
            assert retrainer.decisions == ["challenger"], decided(settings)
            # the run reaches the warehouse through the broker and the sink, a moment later
            wait_for(lambda: count(settings, "SELECT count() FROM retrain_runs") > 0, 60, "run row")
            (run,) = rows(settings, "SELECT * FROM retrain_runs")
            candidate = run["candidate_version"]
            after = ProduceOptions(events=12_000, seed=8, fraud_rate=0.05, labels=True,
                                   drift=str(tmp_path / "moved.toml"))  # fmt: skip
            produce(settings, after)  # the shadow period
            wait_for(lambda: len(retrainer.decisions) > 1, 120, "the shadow decision")
            assert retrainer.decisions == ["challenger", "promoted"], decided(settings)
            watched = (candidate, "1")  # the previous champion in shadow
            wait_for(lambda: all(r.loop.switch.models.versions == watched for r in running), 60)
            produce(settings, replace(after, seed=9))  # the watch period
            wait_for(lambda: len(retrainer.decisions) > 2, 120, "the watch decision")
            assert retrainer.decisions == ["challenger", "promoted", "kept"], decided(settings)
            assert all(r.loop.switch.models.versions == (candidate, None) for r in running)
        partition, offset, detector, feature = run["drift_event"].split(":")
        stored = (
            f"input_partition = {int(partition)} AND input_offset = {int(offset)}"
            f" AND detector = '{detector}' AND feature = '{feature}'"
        )
        assert count(settings, f"SELECT count() FROM drift_events WHERE {stored}") == 1  # noqa: S608
        assert run["trigger"] == "drift" and run["champion_version"] == "1", run
        # the decisions reach the warehouse through the broker and the sink, a moment later
        wait_for(lambda: count(settings, "SELECT count() FROM retrain_runs") == 3, 60, "rows")
        steps = rollout_steps(settings)
        assert [(s["trigger"], s["decision"]) for s in steps] == [
            ("shadow", "promoted"), ("watch", "kept")
        ], steps  # fmt: skip
        assert all(s["parent_run_id"] == run["run_id"] for s in steps)
        shadow = steps[0]
        assert shadow["holdout_frauds"] >= LOOP["retrain_shadow_min_frauds"]
        assert shadow["candidate_roc_auc"] > shadow["champion_roc_auc"] + 0.01
        assert shadow["p_value"] < 0.05
        assert registry.aliases() == {CHAMPION: candidate}
        # every event of the watch period was scored by the new champion
        promoted = f"model_version = '{candidate}'"
        scored = f"SELECT count() FROM predictions WHERE {promoted}"  # noqa: S608
        wait_for(lambda: count(settings, scored) >= 12_000, 60, "the watch period stored")
        assert count(settings, scored) == 12_000
    finally:
        assert sink.stop() == 0


def test_a_stream_without_drift_leads_to_a_refused_run_and_no_promotion(
    make_settings, drift_champion, tmp_path
):
    sink, settings, registry = sink_process(make_settings, drift_champion, tmp_path, **LOOP)
    try:
        with in_thread(build_loop(settings)) as worker:
            stream(settings, 30_000, 7, "none")
            wait_for(lambda: count(settings, "SELECT count() FROM drift_events") > 0, 60, "drift")
            with in_thread(RetrainerLoop(settings)) as retrainer:
                wait_for(lambda: retrainer.loop.decisions, 300, "a training run")
                assert retrainer.loop.decisions == ["refused"], retrainer.loop.decisions
            assert worker.loop.switch.models.versions == ("1", None)
        wait_for(lambda: count(settings, "SELECT count() FROM retrain_runs") > 0, 60, "the run")
        (run,) = rows(settings, "SELECT trigger, decision, reason FROM retrain_runs")
        assert run["trigger"] == "drift" and "not better by more than 0.01" in run["reason"], run
        assert count(settings, "SELECT count() FROM predictions WHERE model_version != '1'") == 0
        assert registry.aliases() == {CHAMPION: "1"}
    finally:
        assert sink.stop() == 0


def test_a_promoted_champion_worse_in_its_watch_window_is_rolled_back_on_every_worker(
    make_settings, drift_champion, tmp_path
):
    """A candidate trained by hand on the moved regime alone passes its shadow period on that
    regime and is promoted; the watch stream returns to the old regime, where the new champion's
    realised ROC AUC is below the previous one's (by 0.006 with these seeds: the test's rollback
    margin is 0): the rollout rolls the previous one back on every worker, and the events after
    it are scored by the previous version."""
    strict = LOOP | {"retrain_rollback_margin": 0.0}  # any drop of the realised AUC
    sink, settings, registry = sink_process(make_settings, drift_champion, tmp_path, **strict)
    (tmp_path / "moved.toml").write_text(MOVED)
    moved = str(tmp_path / "moved.toml")
    workers = [
        settings.model_copy(update={"worker_id": f"{settings.worker_id}-{i}"}) for i in (1, 2)
    ]
    decisions: list[str] = []
    stopping, stats = threading.Event(), RetrainerStats()
    try:
        with ExitStack() as stack:
            running = [stack.enter_context(in_thread(build_loop(w))) for w in workers]
            stream(settings, 30_000, 7, moved)
            run = retrain(settings)  # by hand, on the moved regime's labelled window
            assert run["decision"] == CHALLENGER_SET, run
            candidate = run["candidate_version"]
            rollout = threading.Thread(
                target=lambda: decisions.extend(
                    d for _, d in follow(settings, run, Patience(settings, stopping, stats))
                ),
                daemon=True,
            )
            rollout.start()
            stack.callback(rollout.join, 60)
            stack.callback(stopping.set)
            shadow = ProduceOptions(events=12_000, seed=8, fraud_rate=0.05, labels=True,
                                    drift=moved)  # fmt: skip
            produce(settings, shadow)
            watched = (candidate, "1")  # promoted; the previous champion in shadow
            wait_for(lambda: all(r.loop.switch.models.versions == watched for r in running), 180)
            produce(settings, replace(shadow, seed=9, drift="none"))  # the old regime
            wait_for(lambda: not rollout.is_alive(), 180, "the watch decision")
            assert decisions == ["promoted", "rolled_back"], decided(settings)
            assert all(r.loop.switch.models.versions == ("1", None) for r in running)
            stream(settings, 2_000, 10, "none")  # after the rollback
        assert registry.aliases() == {CHAMPION: "1"}
        wait_for(lambda: count(settings, "SELECT count() FROM retrain_runs") == 3, 60, "rows")
        steps = rollout_steps(settings)
        assert [(s["trigger"], s["decision"]) for s in steps] == [
            ("shadow", "promoted"), ("watch", "rolled_back")
        ], steps  # fmt: skip
        watch = steps[1]
        assert watch["champion_version"] == candidate and watch["candidate_version"] == "1"
        assert (
            watch["champion_roc_auc"]
            < watch["candidate_roc_auc"] - settings.retrain_rollback_margin
        ), watch
        # only the watch period was scored by the rolled-back model; the rest by version 1
        by_version = {
            r["model_version"]: int(r["n"])
            for r in rows(
                settings,
                "SELECT model_version, count() AS n FROM predictions GROUP BY model_version",
            )
        }
        assert by_version == {"1": 30_000 + 12_000 + 2_000, candidate: 12_000}, by_version
    finally:
        assert sink.stop() == 0


def detection(offset: int) -> dict:
    """A detection of the score monitor, dated now (older rows fall to the tables' TTL)."""
    return {
        "event_time": now_ms(), "detected_time": now_ms(), "signal": "score",
        "feature": "", "detector": "page_hinkley_log_odds", "statistic": 2.0, "threshold": 1.0,
        "model_version": "1", "input_partition": 0, "input_offset": offset, "worker_id": "w",
    }  # fmt: skip


RUNS = "stream_app_retrainer_runs_total"


def two_failed_runs(settings) -> list[dict]:
    """The rows of the runs of :func:`detection` 1 and 2, once stored, both ``failed``."""
    wait_for(lambda: count(settings, "SELECT count() FROM retrain_runs") == 2, 60, "rows")
    runs = rows(settings, "SELECT drift_event, decision, reason FROM retrain_runs"
                          " ORDER BY started_time")  # fmt: skip
    assert [(r["drift_event"], r["decision"]) for r in runs] == [
        ("0:1:page_hinkley_log_odds:", "failed"), ("0:2:page_hinkley_log_odds:", "failed")
    ], runs  # fmt: skip
    return runs


def test_a_run_that_fails_or_hangs_is_a_row_with_its_reason_and_the_retrainer_goes_on(
    make_settings, tmp_path
):
    """No champion in the registry: the run's child process exits with an error (the retrainer
    runs as its own process here: its metrics count the run, it stays ready); then a run given
    less time than a child takes to start is killed. Both are ``failed`` rows."""
    (tmp_path / "empty").mkdir()
    sink, settings, _ = sink_process(make_settings, tmp_path / "empty", tmp_path,
                                     retrainer_min_new_frauds=0, sql_token=SQL_TOKEN)  # fmt: skip
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    producer = Producer(producer_config(settings))
    try:
        with pytest.raises(RetrainError, match="not in drift_events"):
            retrain(settings, Trigger("drift", "0:1:page_hinkley_log_odds:"))
        retrainer = ChildProcess("retrainer", ["retrainer"], settings, tmp_path)
        try:
            ready, metrics = retrainer.web_url("/readyz"), retrainer.web_url("/metrics")
            wait_for(lambda: body(ready)[0] == 200, 90, ready)
            before, _ = scrape(metrics)
            producer.produce(settings.topics.drift_events, codec.encode(detection(1)), b"1")
            producer.flush(10)
            wait_for(lambda: total(scrape(metrics)[0], RUNS) == 1, 180, "the first run, counted")
            answers = {path: body(retrainer.web_url(path)) for path in ("/readyz", "/health")}
            after, families = scrape(metrics)
            answers["/metrics"] = body(metrics)
        finally:
            code = retrainer.stop()
        assert code == 0, retrainer.log_path.read_text()[-3000:]
        assert (
            total(before, RUNS) == 0
            and total(before, "stream_app_retrainer_run_seconds_count") == 0
        )
        failed_rows = "SELECT count() FROM retrain_runs WHERE decision = 'failed'"
        wait_for(lambda: count(settings, failed_rows) == 1, 60, "the run's row")
        # the row the run produced, counted by trigger and decision
        assert after[(RUNS, (("decision", "failed"), ("trigger", "drift")))] == 1
        assert total(after, "stream_app_retrainer_detections_read_total") == 1
        assert total(after, "stream_app_retrainer_detections_skipped_total") == 0
        assert total(after, "stream_app_retrainer_run_seconds_count") == 1
        assert after[("stream_app_retrainer_state", (("stream_app_retrainer_state", "idle"),))] == 1
        assert {"stream_app_retrainer_runs:counter", "stream_app_retrainer_state:gauge",
                "stream_app_retrainer_run_seconds:histogram"} <= families  # fmt: skip
        assert answers["/readyz"][0] == 200, answers["/readyz"]
        assert answers["/health"][0] == 200, answers["/health"]
        for path, (_, text) in answers.items():
            assert SQL_TOKEN not in text, path
        hung = settings.model_copy(update={"retrainer_run_timeout_s": 0.05})
        producer.produce(settings.topics.drift_events, codec.encode(detection(2)), b"1")
        producer.flush(10)
        with in_thread(RetrainerLoop(hung)) as running:  # reads on from the committed offset
            wait_for(lambda: running.loop.decisions, 120, "the second run")
        runs = two_failed_runs(settings)
        assert runs[0]["reason"].startswith("exit code 2: "), runs
        assert "champion" in runs[0]["reason"], runs
        assert runs[1]["reason"] == "still running after 0.05 s: killed", runs
    finally:
        assert sink.stop() == 0
