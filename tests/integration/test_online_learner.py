"""The online learner on the real broker and warehouse: the worker's feature tap, the learner's
shadow scores under their own model version, its quality row beside the champion's, and its
state across a restart."""

from __future__ import annotations

import time

import pytest

from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.online import service
from stream_app.online.checkpoint import load_state
from stream_app.online.service import OnlineLearnerLoop
from stream_app.processes import ChildProcess, get_json
from tests.integration.conftest import (
    count,
    fill,
    in_thread,
    query_warehouse,
    wait_for,
    wait_until_stored,
)
from tests.integration.test_observability import scrape, total

pytestmark = pytest.mark.integration

VERSION = "online-logistic"


def learner_settings(make_settings, tmp_path):
    return make_settings(
        online_features=True,
        online_state_dir=tmp_path / "online",
        online_checkpoint_interval_s=0.5,
    )


def test_labels_teach_the_learner_and_its_quality_sits_beside_the_champions(
    make_settings, running_sink, running_worker, tmp_path
):
    settings = learner_settings(make_settings, tmp_path)
    report = produce(settings, ProduceOptions(events=6_000, seed=31, labels=True))
    assert report.labels > 0
    learner = OnlineLearnerLoop(settings)
    with running_sink(settings), running_worker(settings), in_thread(learner):
        wait_until_stored(settings, report)
        wait_for(
            lambda: count(settings, "SELECT count() FROM online_predictions") == report.valid,
            120,
            "every scored event's shadow prediction stored",
        )
        # every label is a chargeback here (one per labelled event): each is learnt from once
        wait_for(lambda: learner.state.stats.learned == report.labels, 60, "every label learnt")
        wait_for(lambda: count(settings, "SELECT count() FROM labels") == report.labels, 60, "")
    _, shadow = query_warehouse(
        settings,
        "SELECT model_version, count(), uniqExact(event_id), uniqExact(score)"
        " FROM online_predictions GROUP BY model_version",
    )
    ((version, rows, events, distinct_scores),) = shadow
    assert (version, int(rows), int(events)) == (VERSION, report.valid, report.valid)
    assert int(distinct_scores) > 100  # it scored with what it learnt, not a constant
    _, quality = query_warehouse(
        settings,
        "SELECT model_version, sum(predictions), sum(labelled) FROM quality_hourly"
        " GROUP BY model_version ORDER BY model_version",
    )
    assert [(v, int(p), int(n)) for v, p, n in quality] == [
        ("1", report.valid, report.labels),
        (VERSION, report.valid, report.labels),
    ]
    _, daily = query_warehouse(
        settings,
        "SELECT model_version, roc_auc FROM quality_daily ORDER BY model_version",
    )
    assert {row[0] for row in daily} == {"1", VERSION}


def test_the_learner_resumes_from_its_checkpoint_after_a_restart(
    make_settings, running_worker, tmp_path
):
    settings = learner_settings(make_settings, tmp_path)
    first = produce(settings, ProduceOptions(events=3_000, seed=41, labels=True))
    with running_worker(settings):
        learner = OnlineLearnerLoop(settings)
        with in_thread(learner):
            wait_for(lambda: learner.state.stats.learned == first.labels, 120, "first labels")
        saved = load_state(settings.online_state_dir)  # written on stop
        assert saved is not None and saved.stats.learned == first.labels
        assert saved.stats.scored == first.valid

        second = produce(settings, ProduceOptions(events=2_000, seed=42, labels=True))
        restarted = OnlineLearnerLoop(settings)
        assert restarted.state.stats.learned == first.labels  # restored, not afresh
        with in_thread(restarted):
            wait_for(
                lambda: restarted.state.stats.scored == first.valid + second.valid,
                120,
                "the second part scored",
            )
            wait_for(
                lambda: restarted.state.stats.learned == first.labels + second.labels,
                60,
                "the second part's labels learnt",
            )
    # nothing of the first part was read twice: it went on from the checkpoint's offsets
    assert restarted.state.stats.scored == first.valid + second.valid
    assert restarted.state.stats.learned == first.labels + second.labels


def test_a_learner_whose_predictions_are_not_acknowledged_skips_checkpoints_and_stops_in_time(
    make_settings, running_worker, tmp_path, monkeypatch
):
    """Its producer on a port no broker listens on: every flush waits ``FLUSH_S`` at most, no
    state is saved once a prediction is pending (a restart replays from the last checkpoint),
    ``checkpoint overdue`` shows."""
    settings = learner_settings(make_settings, tmp_path)
    monkeypatch.setattr(service, "FLUSH_S", 1.0)
    monkeypatch.setattr(service, "producer_config", lambda _: {"bootstrap.servers": "127.0.0.1:9"})
    report = produce(settings, ProduceOptions(events=500, seed=43))
    learner = OnlineLearnerLoop(settings)
    with running_worker(settings), in_thread(learner, stop_timeout_s=10):
        wait_for(lambda: learner.state.stats.scored == report.valid, 120, "every event scored")
        wait_for(lambda: learner.checkpoint_overdue() is not None, 30, "a checkpoint overdue")
        stop_asked = time.monotonic()
    assert time.monotonic() - stop_asked < 5  # the stop's own flush is bounded too
    assert learner.checkpoint_overdue().startswith("none written for ")
    saved = load_state(settings.online_state_dir)  # the checkpoints before the first prediction
    assert saved is None or saved.stats.scored == 0


def test_a_learner_whose_disk_is_full_keeps_scoring_and_checkpoints_once_there_is_room(
    make_settings, running_worker, small_filesystem, tmp_path
):
    """Its state directory on a small filesystem, filled up: no checkpoint is written (no
    partial file left), the learner goes on scoring, ``checkpoint overdue`` names the cause;
    room made again, the next checkpoint holds everything scored."""
    settings = learner_settings(make_settings, tmp_path).model_copy(
        update={"online_state_dir": small_filesystem / "online"}
    )
    first = produce(settings, ProduceOptions(events=500, seed=44))
    learner = OnlineLearnerLoop(settings)
    filler = small_filesystem / "filler"
    with running_worker(settings), in_thread(learner):
        wait_for(lambda: learner.state.stats.scored == first.valid, 120, "the first part scored")
        fill(filler)
        second = produce(settings, ProduceOptions(events=500, seed=45))
        total_valid = first.valid + second.valid
        wait_for(lambda: learner.state.stats.scored == total_valid, 120, "the second part scored")
        wait_for(lambda: learner.checkpoint_overdue() is not None, 30, "a checkpoint overdue")
        assert "No space left on device" in learner.checkpoint_overdue()
        saved = load_state(settings.online_state_dir)
        assert saved is None or saved.stats.scored < total_valid  # the last one before the fill
        assert not (settings.online_state_dir / "learner.partial").exists()
        filler.unlink()
        wait_for(lambda: learner.checkpoint_overdue() is None, 30, "a checkpoint written again")
    saved = load_state(settings.online_state_dir)
    assert saved is not None and saved.stats.scored == total_valid


def test_the_learner_process_serves_health_readiness_and_metrics(
    make_settings, running_worker, tmp_path
):
    settings = learner_settings(make_settings, tmp_path)
    learner = ChildProcess("learner", ["learner"], settings, tmp_path)
    try:
        ready = learner.web_url("/readyz")
        wait_for(lambda: (get_json(ready) or {}).get("status") == "ready", 90, ready)
        assert get_json(learner.web_url("/healthz")) == {"status": "alive"}
        metrics = learner.web_url("/metrics")
        before, families = scrape(metrics)
        report = produce(settings, ProduceOptions(events=2_000, seed=33, labels=True))
        with running_worker(settings):
            wait_for(
                lambda: [
                    total(scrape(metrics)[0], f"stream_app_learner_{name}_total")
                    for name in ("scored", "learned")
                ] == [report.valid, report.labels],
                120, "every event scored in shadow and every label learnt, counted",
            )  # fmt: skip
        health = get_json(learner.web_url("/health"))
    finally:
        code = learner.stop()
    assert code == 0, learner.log_path.read_text()[-3000:]
    assert {"stream_app_learner_scored:counter", "stream_app_learner_learned:counter"} <= families
    assert total(before, "stream_app_learner_scored_total") == 0
    assert health["status"] == "ok" and health["scored"] == report.valid
