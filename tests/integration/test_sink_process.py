"""The real sink process: it lowers its CPU priority, and its threads with it, for scoring; it
survives a pause past its group session timeout; it counts on ``/metrics``; SIGTERM flushes."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from stream_app.codecs.json import JsonCodec
from stream_app.devtools.generator import TransactionGenerator
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import producer_config
from stream_app.processes import ChildProcess, get_json, settings_env
from stream_app.settings import Settings
from stream_app.warehouse.ingest import IngestStats
from stream_app.warehouse.sql import query_rows
from tests.integration.conftest import wait_for
from tests.integration.serving import run_dying_loop

pytestmark = pytest.mark.integration


def niceness(pid: int) -> dict[int, int]:
    """Thread id → nice value, of every thread of ``pid`` (field 19 of its stat line)."""
    values = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        values[int(task.name)] = int(fields[16])
    return values


def test_the_sink_and_its_threads_run_at_the_configured_niceness(make_settings, tmp_path):
    settings = make_settings(sink_nice=7, warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}")
    sink = ChildProcess("sink-nice", ["sink"], settings, tmp_path)
    try:
        wait_for(lambda: get_json(sink.web_url("/health")) is not None, 60, "sink serving")
        threads = niceness(sink.pid)
    finally:
        code = sink.stop()
    assert code == 0
    lowered = os.getpriority(os.PRIO_PROCESS, 0) + 7
    assert threads[sink.pid] == lowered
    # chDB's pools, librdkafka's threads, the SQL endpoint; chDB sets its MemoryWorker thread to
    # -20 where it is allowed to (as root): 0.01-0.03 CPU seconds per benchmark phase
    assert sum(value == lowered for value in threads.values()) >= 10


class SteadyProducer(threading.Thread):
    """Sends ``per_tick`` valid events every 50 ms until stopped; ``sent`` counts the acked."""

    def __init__(self, settings: Settings, per_tick: int = 10) -> None:
        super().__init__(daemon=True)
        self._settings, self._per_tick = settings, per_tick
        self._stop_event = threading.Event()
        self.sent = 0

    def run(self) -> None:
        producer = Producer(producer_config(self._settings))
        codec = JsonCodec()
        events = (g.event for g in TransactionGenerator(seed=31))
        while not self._stop_event.is_set():
            for event in itertools.islice(events, self._per_tick):
                producer.produce(
                    self._settings.topics.transactions, codec.encode(event), event.card_id.encode()
                )
            assert producer.flush(30) == 0
            self.sent += self._per_tick
            self._stop_event.wait(0.05)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(60)
        return self.sent


def test_the_sink_paused_past_its_session_timeout_rejoins_and_loses_nothing(
    make_settings, tmp_path
):
    """SIGSTOP (what a long GC or a slow disk does) past the session timeout, then SIGCONT."""
    settings = make_settings(
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}",
        sink_flush_interval_ms=3000,  # so that it holds uncommitted rows when it stops
    )
    sink = ChildProcess("sink-paused", ["sink"], settings, tmp_path)
    settings = settings.model_copy(update={"sql_port": sink.web_port()})  # where it serves SQL

    def stored(what: str = "count()") -> int:
        sink.check_alive()  # a dead sink fails here, with its log
        return int(query_rows(settings, f"SELECT {what} FROM events")[1][0][0])  # noqa: S608

    producer = SteadyProducer(settings)
    try:
        wait_for(lambda: get_json(f"{settings.sql_url}/health") is not None, 60, "sink serving")
        producer.start()
        wait_for(lambda: stored() > 0, 60, "the sink storing events")
        flushed = producer.sent
        wait_for(lambda: producer.sent > flushed + 100, 30, "events the sink has not flushed")
        os.kill(sink.pid, signal.SIGSTOP)
        time.sleep(10)  # the pause itself: longer than the local profile's 6 s session timeout
        os.kill(sink.pid, signal.SIGCONT)
        resumed_at = producer.sent
        wait_for(lambda: stored() > resumed_at, 90, "the sink storing what came after the pause")
        sent = producer.stop()
        wait_for(lambda: stored() >= sent, 90, "every event stored")
        assert stored() == sent
        assert stored("uniqExact(event_id)") == sent
        log = sink.log_path.read_text(errors="replace")
        assert "group membership lost" in log or "commit refused" in log, "the pause went unseen"
    finally:
        producer.stop()
        if sink.alive():
            os.kill(sink.pid, signal.SIGCONT)
        exit_code = sink.stop()
    assert exit_code == 0


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of a Prometheus page by name and labels; empty while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  # loopback
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return {}
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_sink_counts_on_metrics_and_flushes_what_it_holds_on_sigterm(make_settings, tmp_path):
    settings = make_settings(
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}",
        sink_batch_rows=300,  # a flush by size after the first 300 events ...
        sink_flush_interval_ms=600_000,  # ... and none by age: the next ones wait for SIGTERM
    )
    sink = ChildProcess("sink-metrics", ["sink"], settings, tmp_path)
    url = sink.web_url("/metrics")
    consumed = ("stream_app_sink_consumed_total", ())
    stored = ("stream_app_sink_stored_total", (("topic", settings.topics.transactions),))
    try:
        wait_for(lambda: bool(scrape(url)) or not sink.alive(), 60, "sink serving /metrics")
        produce(settings, ProduceOptions(events=300, seed=5))
        flushes = ("stream_app_sink_flushes_total", ())
        # a flush is counted once its offsets are committed, after its rows are: both awaited
        wait_for(
            lambda: (samples := scrape(url)).get(stored) == 300 and samples.get(flushes, 0) >= 1,
            60,
            "300 rows stored and their flush counted, on /metrics",
        )
        samples = scrape(url)
        assert samples[consumed] == 300
        assert samples[("stream_app_sink_failed_inserts_total", ())] == 0
        produce(settings, ProduceOptions(events=100, seed=6))
        wait_for(lambda: scrape(url).get(consumed) == 400, 60, "100 more consumed")
        assert scrape(url)[stored] == 300  # held, not yet flushed
    finally:
        exit_code = sink.stop()
    assert exit_code == 0, sink.log_path.read_text(errors="replace")[-3000:]
    # the sink is gone: `stream-app sql` opens its data directory (in a process of its own: this
    # one has a chDB directory open already)
    query = "SELECT count(), uniqExact(event_id) FROM events"
    result = subprocess.run(  # our own interpreter and module
        [sys.executable, "-m", "stream_app", "sql", query, "-o", "csv"],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.splitlines()[1:] == ["400,400"], result.stderr


@pytest.mark.parametrize("how", ["raises", "returns"])
def test_a_sink_whose_ingest_thread_ends_exits_with_code_70(how, make_settings):
    """Not a process that keeps answering /health and SQL while nothing is ingested."""
    settings = make_settings(warehouse_dsn="http://127.0.0.1:9")  # no SQL endpoint: not opened
    result = run_dying_loop("stream_app.warehouse.service", IngestStats, settings, how)
    output = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
    assert result.returncode == 70, output[-3000:]
    assert ("the loop broke on purpose" in output) == (how == "raises")
    assert "ingest-loop thread ended: the process stops" in output
