"""The worker's ``/health`` tells the truth, and ordinary disruptions do not stop scoring: a broker
stopped and restarted, a rules path that would block its reader, a model that aborts its loader."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import stream_app.alerts
from models.registry import FileModelStore, sha256_text
from stream_app.control.client import StatusReader, publish_command, wait_for_acks
from stream_app.control.commands import CommandKind, ControlCommand
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import LIBRDKAFKA_LOG, consumer_config, producer_config
from stream_app.kafka.local_broker import LocalBroker
from stream_app.kafka.topics import ensure_topics
from stream_app.processes import ChildProcess, get_json
from stream_app.scoring.health import unhealthy_reasons
from stream_app.scoring.loop import LoopStats
from tests.integration.conftest import wait_for
from tests.integration.serving import run_dying_loop

pytestmark = pytest.mark.integration


def health(port: int) -> tuple[int, dict[str, Any]] | None:
    """``/health``'s HTTP status and document, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def healthy_with(port: int, scored: int) -> bool:
    answer = health(port)
    return answer is not None and answer[0] == 200 and answer[1]["scored"] >= scored


def field(port: int, name: str) -> Any:
    answer = health(port)
    return None if answer is None else answer[1][name]


def unhealthy_because(port: int, words: str) -> bool:
    answer = health(port)
    return answer is not None and answer[0] == 503 and any(words in r for r in answer[1]["reasons"])


def reasons(loop: Any, stall_s: float = 2.0) -> list[str]:
    """Why an in-process worker loop's /health would answer 503 now (its thread running)."""
    return unhealthy_reasons(
        loop.stats,
        failure=None,
        running=True,
        broker_error=None,
        stall_s=stall_s,
        now=time.monotonic(),
    )


@pytest.mark.local_stack  # a broker of its own
def test_a_stopped_broker_is_reported_and_scoring_resumes_after_its_restart(
    make_settings, tmp_path
):
    """A private broker, stopped under the worker and started again: the worker's group
    membership is gone (the checkpoint commit is refused with UNKNOWN_MEMBER_ID), it rejoins."""
    broker = LocalBroker(tmp_path / "private-broker").start()  # a node this test may stop
    try:
        settings = make_settings(
            bootstrap_servers=broker.bootstrap_servers,
            health_stall_s=5.0,
            batch_size=200,
            checkpoint_interval_ms=600_000,  # what it scored is not committed when the broker stops
        )
        produce(settings, ProduceOptions(events=2000, seed=31))
        worker = ChildProcess("worker", ["worker"], settings, tmp_path)
        try:
            port = worker.web_port()
            wait_for(lambda: healthy_with(port, 2000), 120, "the worker scoring, healthy")
            broker.stop()
            wait_for(lambda: unhealthy_because(port, "broker unreachable"), 60, "503: broker")
            broker.start()
            ensure_topics(settings)  # a no-op: the broker kept its log, topics included
            scored = field(port, "scored")
            produce(settings, ProduceOptions(events=2000, seed=32))
            try:
                wait_for(lambda: healthy_with(port, scored + 2000), 120, "scoring again, healthy")
            except AssertionError as exc:  # once seen under a double load: what the worker said
                health = get_json(f"http://127.0.0.1:{port}/health")
                lines = worker.log_path.read_text(errors="replace").splitlines()
                tail = [line for line in lines if LIBRDKAFKA_LOG.name not in line][-60:]
                raise AssertionError(f"{exc}; /health: {health}; log:\n" + "\n".join(tail)) from exc
            worker.check_alive()
        finally:
            code = worker.stop()
        assert code == 0, worker.log_path.read_text()[-3000:]
    finally:
        broker.stop()


def test_a_fifo_in_place_of_the_rules_file_neither_freezes_scoring_nor_slows_sigterm(
    make_settings, tmp_path
):
    rules = tmp_path / "rules.toml"
    shutil.copy(Path(stream_app.alerts.__file__).parent / "default_rules.toml", rules)
    settings = make_settings(alert_rules=rules, batch_size=200)
    options = ProduceOptions(events=20_000, rate=1000, seed=33)
    producing = threading.Thread(target=lambda: produce(settings, options))
    producing.start()
    worker = ChildProcess("worker", ["worker"], settings, tmp_path)
    try:
        port = worker.web_port()
        wait_for(lambda: healthy_with(port, 1000), 120, "the worker scoring, healthy")
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        os.replace(fifo, rules)  # nobody writes to it: a plain read would block forever
        wait_for(
            lambda: "not a regular file" in (field(port, "rules_refused") or ""),
            30,
            "the FIFO refused",
        )
        scored = field(port, "scored")
        wait_for(lambda: healthy_with(port, scored + 1000), 60, "scoring going on, healthy")
    finally:
        started = time.monotonic()
        code = worker.stop(timeout_s=60)
        stop_s = time.monotonic() - started
        producing.join(60)
    assert code == 0, worker.log_path.read_text()[-3000:]
    assert stop_s < 15  # 63 s when the scoring thread hung on the FIFO


def aborting_copy(model_dir: Path, target: Path) -> Path:
    """The session's registry plus version 2: a model text that makes LightGBM abort the process
    that loads it ("[Fatal] Model format error", then terminate), recorded with its own checksum
    as if it were fine (a registry written by another tool, a bad copy made before hashing)."""
    shutil.copytree(model_dir, target)
    store = FileModelStore(target)
    lines = store.load_text("1").splitlines(keepends=True)
    first_leaves = next(i for i, line in enumerate(lines) if line.startswith("num_leaves="))
    broken = "".join(lines[:first_leaves] + lines[first_leaves + 1 :])
    metadata = msgspec.structs.replace(store.metadata("1"), version="2", sha256=sha256_text(broken))
    (target / "2").mkdir()
    (target / "2" / "model.txt").write_text(broken)
    (target / "2" / "metadata.json").write_bytes(msgspec.json.encode(metadata))
    return target


def test_a_promoted_model_that_aborts_its_loader_leaves_the_worker_scoring_on_the_last_one(
    make_settings, model_dir, tmp_path
):
    settings = make_settings(model_dir=aborting_copy(model_dir, tmp_path / "models"))

    def more_events(seed: int) -> None:
        """Events for the next wait, all sent first: no wait can outlast a paced producer."""
        produce(settings, ProduceOptions(events=3000, seed=seed))

    more_events(34)
    first = ChildProcess("worker-1", ["worker"], settings, tmp_path)
    try:
        port = first.web_port()
        wait_for(lambda: healthy_with(port, 1000), 120, "the worker scoring, healthy")
        command = ControlCommand.new(CommandKind.PROMOTE, "2", "pytest")
        reader = StatusReader(settings)
        try:
            publish_command(settings, command)
            acks = wait_for_acks(reader, command.command_id, {settings.worker_id}, 60)
        finally:
            reader.close()
        first.check_alive()  # before the fix: exit 134, no acknowledgement
        ack = acks[settings.worker_id]
        assert (ack.status, ack.champion_version) == ("refused", "1")
        assert "does not load and score" in ack.reason
        scored = field(port, "scored")
        more_events(35)
        wait_for(lambda: healthy_with(port, scored + 1000), 60, "scoring on version 1")
        assert field(port, "model_version") == "1"
    finally:
        first_code = first.stop()  # asserted after: a failure above is the one reported
    assert first_code == 0, first.log_path.read_text()[-3000:]
    # the restart replays the promotion from the control topic: refused again, no crash loop
    second = ChildProcess("worker-2", ["worker"], settings, tmp_path)
    try:
        port = second.web_port()
        more_events(36)
        wait_for(lambda: healthy_with(port, 1000), 120, "the restarted worker scoring")
        assert field(port, "model_version") == "1"
    finally:
        second_code = second.stop()
    assert second_code == 0, second.log_path.read_text()[-3000:]
    reader = StatusReader(settings)
    try:
        refusals = [s for s in reader.read_to_end() if s.command_id == command.command_id]
    finally:
        reader.close()
    assert [(s.status, s.reason.startswith("replayed: ")) for s in refusals] == [
        ("refused", False),
        ("refused", True),
    ]


@pytest.mark.parametrize("how", ["raises", "returns"])
def test_a_worker_whose_scoring_thread_ends_exits_with_code_70(how, make_settings, tmp_path):
    """Not a process that stays up answering /health while nothing scores (faust's web server
    and services keep it alive): it stops and exits with code 70, however the thread ended (an
    exception that escaped the thread's handler was seen after a broker restart)."""
    settings = make_settings()
    started = time.monotonic()
    result = run_dying_loop("stream_app.scoring.worker", LoopStats, settings, how)
    output = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
    assert result.returncode == 70, output[-3000:]
    assert ("the loop broke on purpose" in output) == (how == "raises")
    assert "scoring-loop thread ended: the process stops" in output
    assert time.monotonic() - started < 60


class StuckRules:
    """A rules watcher whose check blocks until released: the loop stuck inside a turn."""

    refused = None

    def __init__(self) -> None:
        self.release = threading.Event()

    def check(self) -> None:
        self.release.wait(60)


def test_a_loop_stuck_inside_a_turn_is_reported_stalled_then_healthy_again(
    make_settings, running_worker
):
    settings = make_settings(batch_size=200)
    produce(settings, ProduceOptions(events=1000, seed=35))

    with running_worker(settings) as running:
        loop = running.loop
        wait_for(lambda: loop.stats.scored >= 1000 and not reasons(loop), 60, "scoring, healthy")
        stuck = StuckRules()
        loop.rules = stuck
        wait_for(lambda: any("scoring loop stalled" in r for r in reasons(loop)), 30, "stalled")
        stuck.release.set()
        wait_for(lambda: not reasons(loop), 30, "healthy again")


def test_partitions_whose_offsets_an_open_transaction_holds_are_reported_then_scored_once(
    make_settings, running_worker
):
    """A transaction left open with offsets for the worker group holds the worker's committed
    offsets (a read-committed consumer asks for stable ones): its partitions are assigned and not
    fetched, as after a broker stop that left a transaction hanging. /health says so; once the
    transaction ends, every event is scored, once."""
    settings = make_settings(batch_size=200)
    produce(settings, ProduceOptions(events=1000, seed=36))
    topic, partitions = settings.topics.transactions, settings.topics.partitions
    group_member = Consumer(consumer_config(settings, settings.worker_group))
    holder = Producer(
        producer_config(
            settings, **{"transactional.id": f"holder-{topic}", "transaction.timeout.ms": 120_000}
        )
    )
    holder.init_transactions(30)
    holder.begin_transaction()
    holder.send_offsets_to_transaction(
        [TopicPartition(topic, p, 0) for p in range(partitions)],
        group_member.consumer_group_metadata(),
        30,
    )

    def unfetched(loop) -> list[str]:
        return [r for r in reasons(loop) if "assigned and not fetched" in r]

    with running_worker(settings) as running:
        loop = running.loop
        wait_for(lambda: unfetched(loop), 60, "503: partitions assigned and not fetched")
        assert unfetched(loop)[0].endswith(", ".join(f"{topic}:{p}" for p in range(partitions)))
        assert loop.stats.scored == 0
        holder.abort_transaction(30)
        wait_for(lambda: loop.stats.scored >= 1000 and not reasons(loop), 60, "scored, healthy")
        time.sleep(1.0)  # a record read twice would be scored by now
        assert loop.stats.scored == 1000
    group_member.close()


def test_a_champion_alias_on_a_model_that_aborts_falls_back_to_the_previous_champion(
    make_settings, model_dir, tmp_path
):
    directory = aborting_copy(model_dir, tmp_path / "models")
    FileModelStore(directory).set_alias("champion", "2", by="a hand edit")
    settings = make_settings(model_dir=directory)
    produce(settings, ProduceOptions(events=2000, seed=36))
    worker = ChildProcess("worker", ["worker"], settings, tmp_path)
    try:
        port = worker.web_port()
        wait_for(lambda: healthy_with(port, 2000), 120, "scoring on the previous champion")
        assert field(port, "model_version") == "1"
    finally:
        code = worker.stop()
    assert code == 0, worker.log_path.read_text()[-3000:]  # before the fix: -6
    reader = StatusReader(settings)
    try:
        said = [
            (s.command, s.status, s.reason) for s in reader.read_to_end() if s.status == "fallback"
        ]
    finally:
        reader.close()
    assert [c for c, _, _ in said] == ["start", "start"]
    assert "champion candidate champion refused: model 2 does not load and score" in said[0][2]
    assert said[1][2] == "falling back to model 1, the last champion that loads"
