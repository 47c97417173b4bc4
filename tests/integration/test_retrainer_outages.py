"""The retrainer on a bad day, as its own process on the real broker and warehouse: the sink (the
warehouse's endpoint) goes away and comes back; the retrainer is killed in the middle of a
rollout and started again."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer

from models.registry import CHAMPION
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.devtools.demo_drift import MOVED
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import producer_config
from stream_app.processes import ChildProcess
from stream_app.scoring.build import build_loop
from tests.integration.conftest import count, in_thread, sink_process, wait_for
from tests.integration.test_observability import body, scrape, total
from tests.integration.test_retrainer import LOOP, RUNS, detection, rows, stream, two_failed_runs

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]

FAILURES = "stream_app_retrainer_warehouse_failures_total"
OUTAGE_LOGGED = "warehouse unavailable, asking again with a backoff"


def test_the_retrainer_waits_out_a_warehouse_outage_and_goes_on_by_itself(make_settings, tmp_path):
    """The sink stops while the retrainer runs, and a detection arrives: the retrainer stays
    alive and asks again with a backoff (logged once), not ready with the reason; the sink starts
    again on the same port: the retrainer is ready again, decides the detection that waited and
    a later one. (The registry is empty: each run's child fails at once, a ``failed`` row.)"""
    (tmp_path / "empty").mkdir()
    sink, settings, _ = sink_process(
        make_settings, tmp_path / "empty", tmp_path, retrainer_min_new_frauds=0,
        retrainer_warehouse_retry_s=0.2, retrainer_warehouse_retry_max_s=1.0,
    )  # fmt: skip
    codec = topic_codec(settings, schema_registry(settings), "drift_events")
    producer = Producer(producer_config(settings))

    def detect(offset: int) -> None:
        producer.produce(settings.topics.drift_events, codec.encode(detection(offset)), b"1")
        producer.flush(10)

    retrainer = ChildProcess("retrainer", ["retrainer"], settings, tmp_path)
    again = None
    try:
        ready, metrics = retrainer.web_url("/readyz"), retrainer.web_url("/metrics")
        wait_for(lambda: body(ready)[0] == 200, 90, ready)
        assert sink.stop() == 0
        detect(1)
        # 0.2 + 0.4 + 0.8 + 1 + 1 s: several questions failed, the process still there
        wait_for(lambda: total(scrape(metrics)[0], FAILURES) >= 5, 60, "questions asked again")
        status, text = body(ready)
        reasons = json.loads(text)["reasons"]
        assert status == 503 and len(reasons) == 1, text
        assert reasons[0].startswith(
            f"warehouse unavailable: the sink's SQL endpoint {settings.sql_url} does not answer"
        ), reasons
        status, text = body(retrainer.web_url("/health"))
        assert status == 503 and json.loads(text)["reasons"] == reasons, text
        assert retrainer.alive()
        assert retrainer.log_path.read_text().count(OUTAGE_LOGGED) == 1
        assert total(scrape(metrics)[0], RUNS) == 0
        # the sink again, on the port the retrainer asks
        again = ChildProcess("sink-again", ["sink"], settings, tmp_path)
        wait_for(lambda: body(ready)[0] == 200, 90, "the retrainer ready again")
        wait_for(lambda: total(scrape(metrics)[0], RUNS) == 1, 180, "the waiting detection")
        detect(2)
        wait_for(lambda: total(scrape(metrics)[0], RUNS) == 2, 180, "a later detection")
        two_failed_runs(settings)
        log = retrainer.log_path.read_text()
        assert log.count(OUTAGE_LOGGED) == 1 and log.count("the warehouse answers again") == 1
    finally:
        code = retrainer.stop()
        assert again is None or again.stop() == 0
    assert code == 0, retrainer.log_path.read_text()[-3000:]


def test_a_retrainer_killed_in_the_shadow_period_resumes_it_without_a_second_run(
    make_settings, drift_champion, tmp_path
):
    """The retrainer trains on a detection and sets the challenger, then is killed (SIGKILL)
    while it waits for the shadow period: the detection's offset is not committed. Started
    again, it reads the detection again, finds its run in ``retrain_runs`` and goes on with the
    shadow period: the drift event ends with one training run and one shadow decision."""
    sink, settings, registry = sink_process(make_settings, drift_champion, tmp_path, **LOOP)
    (tmp_path / "moved.toml").write_text(MOVED)
    moved = str(tmp_path / "moved.toml")
    trained = "SELECT count() FROM retrain_runs WHERE decision = 'challenger'"
    try:
        with in_thread(build_loop(settings)):
            stream(settings, 30_000, 7, "pattern-moves")
            wait_for(lambda: count(settings, "SELECT count() FROM drift_events") > 0, 60, "drift")
            first = ChildProcess("retrainer", ["retrainer"], settings, tmp_path)
            try:
                wait_for(lambda: count(settings, trained) == 1, 300, "a challenger set")
            finally:
                first.kill()  # in the shadow period: its events are not produced yet
            (run,) = rows(settings, "SELECT run_id, drift_event, candidate_version"
                                    " FROM retrain_runs")  # fmt: skip
            second = ChildProcess("retrainer-again", ["retrainer"], settings, tmp_path)
            try:
                produce(settings, ProduceOptions(events=12_000, seed=8, fraud_rate=0.05,
                                                 labels=True, drift=moved))  # fmt: skip
                wait_for(
                    lambda: count(settings, "SELECT count() FROM retrain_runs") > 1,
                    240,
                    "the shadow decision",
                )
            finally:
                code = second.stop()
            assert code == 0, second.log_path.read_text()[-3000:]
        decided = rows(
            settings,
            "SELECT trigger, decision, parent_run_id FROM retrain_runs"  # noqa: S608
            f" WHERE drift_event = '{run['drift_event']}' ORDER BY started_time",
        )
        assert [(r["trigger"], r["decision"], r["parent_run_id"]) for r in decided] == [
            ("drift", "challenger", ""), ("shadow", "promoted", run["run_id"])
        ], decided  # fmt: skip
        assert count(settings, "SELECT count() FROM retrain_runs") == 2
        assert registry.aliases()[CHAMPION] == run["candidate_version"]
        assert "its rollout goes on (shadow)" in second.log_path.read_text()
    finally:
        assert sink.stop() == 0
