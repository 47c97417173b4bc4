"""The real worker and sink processes, seen the way an operator sees them: ``/metrics`` has the
documented names and its counters move, ``/healthz`` and ``/readyz`` answer, ``stream-app status``
shows the stack, the logs are JSON lines with one line per lifecycle event, and no secret appears
in a log or an answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from models.registry import FileModelStore
from stream_app.cli_status import collect_status
from stream_app.control import promotion
from stream_app.control.commands import CommandKind
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import producer_config
from stream_app.processes import ChildProcess, get_json, settings_env
from tests.integration.conftest import json_lines, wait_for

pytestmark = pytest.mark.integration

SQL_TOKEN = "sql-token-Zq81xYw"  # noqa: S105  # the secrets the test looks for
SIGNING_KEY = "signing-key-P4vN2kLr"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[Samples, set[str]]:
    """The samples of ``url`` by name and labels, and the family names with their types."""
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  # loopback
        text = response.read().decode()
    families = list(text_string_to_metric_families(text))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }
    return samples, {f"{family.name}:{family.type}" for family in families}


def total(samples: Samples, name: str) -> float:
    return sum(value for (sample, _), value in samples.items() if sample == name)


def labels_of(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(labels)[label] for (sample, labels), _ in samples.items() if sample == name}


def body(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  # loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def worker_lag(status: dict[str, Any], group: str, topic: str) -> int:
    return sum(status["lag"][group][topic].values())


def check_status(settings) -> None:
    """``stream-app status`` on the running stack (``settings`` name the sink's port): the
    worker's group caught up, the worker live on the registry's champion, no retrain table
    (none), the sink healthy."""
    group, topic = settings.worker_group, settings.topics.transactions
    wait_for(
        lambda: worker_lag(collect_status(settings), group, topic) == 0, 60, "offsets committed"
    )
    env = {**os.environ, **settings_env(settings)}
    command = [sys.executable, "-m", "stream_app", "status"]
    done = subprocess.run([*command, "--json"], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    status = json.loads(done.stdout)
    champion = FileModelStore(settings.model_dir).aliases()["champion"]
    assert status["aliases"]["champion"] == champion
    assert worker_lag(status, group, topic) == 0
    sink_lag = status["lag"][settings.sink_group]
    assert set(sink_lag) >= {topic, settings.topics.predictions}
    [worker] = [w for w in status["workers"] if w["worker_id"] == settings.worker_id]
    assert worker["live"] and worker["champion"] == champion
    assert worker["seconds_since_last_status"] < 3 * settings.heartbeat_interval_s + 1
    assert status["last_retrain"] is None  # no retrain_runs table here
    assert status["last_drift"] is None or "detector" in status["last_drift"]
    assert status["sink"]["status"] == "ok" and status["sink"]["ready"] == "ready"
    screen = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert screen.returncode == 0, screen.stderr.decode()
    text = screen.stdout.decode()
    assert f"champion={champion}" in text and settings.worker_id in text
    assert "last retrain: none" in text


SWAPS, REFUSALS, DRIFT = (
    "stream_app_worker_model_swaps_total",
    "stream_app_worker_model_refusals_total",
    "stream_app_worker_drift_detections_total",
)


def drive_swap_refusal_and_drift(settings, worker_url: str) -> Samples:
    """A promotion the worker applies, a control record it refuses and a covariate shift its
    monitors detect (the drift test's stream); the worker's samples once all three counted."""
    champion = FileModelStore(settings.model_dir).aliases()["champion"]
    applied = promotion.issue(settings, CommandKind.PROMOTE, champion, 30, "pytest")
    assert applied.acks[settings.worker_id].status == "applied"
    producer = Producer(producer_config(settings))
    producer.produce(settings.topics.control, b"not a command", b"champion")
    producer.flush(10)
    produce(settings, ProduceOptions(events=20_000, seed=7, drift="covariate-shift"))
    moved: dict[str, Samples] = {}

    def counted() -> bool:
        moved["samples"] = scrape(worker_url)[0]
        return all(total(moved["samples"], name) > 0 for name in (SWAPS, REFUSALS, DRIFT))

    wait_for(counted, 120, "a swap, a refusal and a drift detection counted")
    return moved["samples"]


def test_worker_and_sink_metrics_health_and_logs(make_settings, tmp_path):
    settings = make_settings(
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}",
        sql_token=SecretStr(SQL_TOKEN),
        control_signing_keys={"ops": SecretStr(SIGNING_KEY)},
        control_signing_key_id="ops",
        log_json=True,
    )
    sink = ChildProcess("sink", ["sink"], settings, tmp_path)
    worker = ChildProcess("worker", ["worker"], settings, tmp_path)
    processes = {"worker": worker, "sink": sink}
    try:
        for process in processes.values():
            url = process.web_url("/readyz")
            wait_for(lambda url=url: (get_json(url) or {}).get("status") == "ready", 90, url)
            assert body(process.web_url("/healthz"))[0] == 200
        worker_url, sink_url = worker.web_url("/metrics"), sink.web_url("/metrics")
        before, _ = scrape(worker_url)
        options = ProduceOptions(events=1000, bad_fraction=0.05, fraud_rate=0.05, seed=23)
        report = produce(settings, options)
        wait_for(
            lambda: total(scrape(worker_url)[0], "stream_app_worker_consumed_total") == 1000,
            90,
            "the worker consumed every record",
        )
        stored = ("stream_app_sink_stored_total", (("topic", settings.topics.transactions),))
        wait_for(lambda: scrape(sink_url)[0].get(stored) == report.valid, 90, "events stored")
        samples, families = scrape(worker_url)
        sink_samples, sink_families = scrape(sink_url)
        moved = drive_swap_refusal_and_drift(settings, worker_url)
        check_status(settings.model_copy(update={"sql_port": sink.web_port()}))
        answers = {
            f"{name} {path}": body(process.web_url(path))
            for name, process in processes.items()
            for path in ("/health", "/healthz", "/readyz", "/metrics")
        }
    finally:
        codes = {name: process.stop() for name, process in processes.items()}
    logs = {name: process.log_path.read_text() for name, process in processes.items()}
    assert codes == {"worker": 0, "sink": 0}, logs

    # the worker: every documented family, with its type
    assert {
        "stream_app_worker_consumed:counter",
        "stream_app_worker_scored:counter",
        "stream_app_worker_dead_letters:counter",
        "stream_app_worker_alerts_by_rule:counter",
        "stream_app_worker_model_swaps:counter",
        "stream_app_worker_model_refusals:counter",
        "stream_app_worker_drift_detections:counter",
        "stream_app_worker_model:gauge",
        "stream_app_worker_lag:gauge",
        "stream_app_worker_batch_size:histogram",
        "stream_app_worker_stage_seconds:histogram",
    } <= families
    # ... and its counters moved by what was produced, and by the commands and the drift
    assert total(before, "stream_app_worker_scored_total") == 0
    assert [total(samples, name) for name in (SWAPS, REFUSALS, DRIFT)] == [0, 0, 0]
    assert total(moved, SWAPS) == 1 and total(moved, REFUSALS) == 1
    assert total(moved, DRIFT) > 0
    assert total(samples, "stream_app_worker_scored_total") == report.valid
    dead = total(samples, "stream_app_worker_dead_letters_total")
    assert dead == report.malformed > 0
    assert len(labels_of(samples, "stream_app_worker_dead_letters_total", "reason")) > 1
    assert total(samples, "stream_app_worker_batch_size_sum") == 1000
    batches = total(samples, "stream_app_worker_batches_total")
    assert total(samples, "stream_app_worker_batch_size_count") == batches > 0
    stages = labels_of(samples, "stream_app_worker_stage_seconds_count", "stage")
    assert stages >= {"decode", "features", "predict", "encode", "produce", "checkpoint"}
    predict = ("stream_app_worker_stage_seconds_count", (("stage", "predict"),))
    assert samples[predict] == batches
    assert total(samples, "stream_app_worker_alerts_by_rule_total") >= total(
        samples, "stream_app_worker_alerts_total"
    )
    assert labels_of(samples, "stream_app_worker_model", "alias") == {"champion"}
    lag = labels_of(samples, "stream_app_worker_lag", "partition")
    assert lag == {str(p) for p in range(settings.topics.partitions)}
    assert total(samples, "stream_app_worker_lag") == 0  # every record consumed

    # the sink
    assert {
        "stream_app_sink_consumed:counter",
        "stream_app_sink_failed_inserts:counter",
        "stream_app_sink_lag:gauge",
        "stream_app_sink_stage_seconds:histogram",
    } <= sink_families
    sink_stages = labels_of(sink_samples, "stream_app_sink_stage_seconds_count", "stage")
    assert sink_stages >= {"decode", "insert", "commit"}
    assert total(sink_samples, "stream_app_sink_consumed_total") >= 1000
    assert total(sink_samples, "stream_app_sink_failed_inserts_total") == 0

    for name, (status, text) in answers.items():
        assert status == 200, (name, text)
    # no secret anywhere an operator looks
    for where, text in [*((k, v[1]) for k, v in answers.items()), *logs.items()]:
        for secret in (SQL_TOKEN, SIGNING_KEY):
            assert secret not in text, f"{secret} in {where}"

    # JSON lines, one per lifecycle event: never one per record
    for name, text in logs.items():
        lines = json_lines(text.splitlines())
        assert len(lines) < 200, f"{name}: {len(lines)} log lines for 21,000 records"
        assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
        assert any(line["message"].startswith("assigned ") for line in lines), name
    messages = [line["message"] for line in json_lines(logs["worker"].splitlines())]
    assert any(message.startswith("worker ") and "starting" in message for message in messages)
    assert any(message.startswith("scoring loop stopped") for message in messages)
