"""Hot-swap through the control topic: under load, two workers, every event scored once."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from confluent_kafka import Producer

from models.registry import FileModelStore
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.control import promotion
from stream_app.control.commands import CommandKind, ControlCodecs, ControlCommand
from stream_app.control.promotion import PromotionResult
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.config import producer_config
from tests.integration.conftest import copy_registry, query_warehouse, read_topic, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def swap_models(two_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 champion, v2 a good alternative, v3..v5 broken in the ways a worker must refuse."""
    directory = tmp_path_factory.mktemp("swap-models")
    store = copy_registry(two_models, directory)
    v2 = store.metadata("2")
    text = store.load_text(v2.version)
    meta = dict(feature_set_version=v2.feature_set_version, feature_names=v2.feature_names,
                threshold=0.5, training={}, evaluation={})  # fmt: skip
    other_features = store.register(text, **{**meta, "feature_set_version": "fs0"})
    tampered = store.register(text, **meta)
    (directory / tampered.version / "model.txt").write_text(text.replace("tree", "tree ", 1))
    store.register("this is not a LightGBM model\n", **meta)  # checksum fine, does not load
    assert (other_features.version, tampered.version) == ("3", "4")
    return directory


def issue(settings, kind: CommandKind, version: str | None, workers: set[str]) -> PromotionResult:
    return promotion.issue(settings, kind, version, 30, "pytest", workers)


def copy_of(models: Path, tmp_path: Path) -> Path:
    """A private copy of the module's registry: promotions move its aliases."""
    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    return copy


def versions_by_partition(settings, count: int) -> dict[int, list[str]]:
    codec = topic_codec(settings, schema_registry(settings), "predictions")
    by_partition: dict[int, list[tuple[int, str]]] = {}
    for message in read_topic(settings, settings.topics.predictions, count):
        record = codec.decode(message.value())
        by_partition.setdefault(record["source_partition"], []).append(
            (record["source_offset"], record["model_version"])
        )
    return {p: [v for _, v in sorted(rows)] for p, rows in by_partition.items()}


def changes(sequence: list[str]) -> list[str]:
    """The distinct runs of a sequence: ['1', '1', '2', '1'] -> ['1', '2', '1']."""
    return [v for i, v in enumerate(sequence) if i == 0 or sequence[i - 1] != v]


def test_promote_and_rollback_under_load_with_two_workers(
    make_settings, swap_models, running_worker, running_sink, tmp_path
):
    models = copy_of(swap_models, tmp_path)
    settings = make_settings(model_dir=models, batch_size=200)
    one = settings.model_copy(update={"worker_id": "worker-a"})
    two = settings.model_copy(update={"worker_id": "worker-b", "worker_web_port": 0})
    options = ProduceOptions(events=40_000, rate=2000, seed=21)  # outlasts the model checks
    result: dict = {}
    producing = threading.Thread(target=lambda: result.update(report=produce(settings, options)))
    with running_sink(settings), running_worker(one) as a, running_worker(two) as b:
        producing.start()
        loops = [a.loop, b.loop]
        wait_for(lambda: all(loop.stats.assigned for loop in loops), 60, "both workers assigned")
        wait_for(lambda: sum(loop.stats.scored for loop in loops) > 3000, 60, "load")
        workers = {"worker-a", "worker-b"}
        promoted = issue(settings, CommandKind.PROMOTE, "2", workers)
        assert {w: a.status for w, a in promoted.acks.items()} == dict.fromkeys(workers, "applied")
        assert promoted.aliases_moved and FileModelStore(models).aliases()["champion"] == "2"
        refused = issue(settings, CommandKind.PROMOTE, "4", workers)  # checksum mismatch
        assert refused.refused == sorted(workers) and not refused.aliases_moved
        assert FileModelStore(models).aliases()["champion"] == "2"
        scored_at_promote = sum(loop.stats.scored for loop in loops)
        wait_for(lambda: sum(loop.stats.scored for loop in loops) > scored_at_promote + 3000, 60)
        rolled_back = issue(settings, CommandKind.ROLLBACK, "1", workers)
        assert rolled_back.applied == sorted(workers)
        assert all(a.champion_version == "1" for a in rolled_back.acks.values())
        assert FileModelStore(models).aliases()["champion"] == "1"
        producing.join(60)
        report = result["report"]
        wait_for(
            lambda: (
                query_warehouse(settings, "SELECT count() FROM predictions")[1][0][0]
                >= report.valid
            ),
            90,
            "every prediction stored",
        )
    rows = query_warehouse(settings, "SELECT count(), uniqExact(event_id) FROM predictions")[1]
    assert rows == [[report.valid, report.valid]]
    by_version = dict(
        query_warehouse(settings, "SELECT model_version, count() FROM predictions GROUP BY 1")[1]
    )
    assert set(by_version) == {"1", "2"}  # and never the refused version 4
    # per partition, versions change only where the commands were applied, in their order; a
    # partition that saw no record in a phase skips that phase's version
    allowed = (["1", "2", "1"], ["1", "2"], ["2", "1"], ["1"], ["2"])
    for partition, versions in versions_by_partition(settings, report.valid).items():
        assert changes(versions) in allowed, partition
    assert any(
        changes(v) == ["1", "2", "1"]
        for v in versions_by_partition(settings, report.valid).values()
    )
    events = query_warehouse(
        settings,
        "SELECT command, status, count() FROM control_events WHERE command != 'stopped' "
        "GROUP BY 1, 2 ORDER BY 1, 2",
    )[1]
    assert events == [
        ["promote", "applied", 2],
        ["promote", "refused", 2],
        ["rollback", "applied", 2],
    ]


REFUSALS = [
    ("unknown version", CommandKind.PROMOTE, "6", "unknown model version"),
    ("other feature set", CommandKind.PROMOTE, "3", "feature set"),
    ("checksum mismatch", CommandKind.SET_CHALLENGER, "4", "checksum mismatch"),
    ("does not load", CommandKind.PROMOTE, "5", "does not load"),
]


def test_every_refusal_leaves_the_model_and_is_acknowledged(
    make_settings, swap_models, running_worker, running_sink, tmp_path
):
    settings = make_settings(model_dir=swap_models)
    # the operator's registry knows a version 6 that the worker's does not
    operator = settings.model_copy(update={"model_dir": copy_of(swap_models, tmp_path)})
    v2 = FileModelStore(swap_models).metadata("2")
    FileModelStore(operator.model_dir).register(
        "not read by anyone\n", feature_set_version=v2.feature_set_version,
        feature_names=v2.feature_names, threshold=0.5, training={}, evaluation={},
    )  # fmt: skip
    worker = {settings.worker_id}
    with running_sink(settings), running_worker(settings) as running:
        wait_for(lambda: running.loop.stats.assigned, 60, "assignment")
        for name, kind, version, reason in REFUSALS:
            result = issue(operator, kind, version, worker)
            ack = result.acks[settings.worker_id]
            assert (ack.status, ack.champion_version, ack.challenger_version) == (
                "refused", "1", None
            ), name  # fmt: skip
            assert reason in ack.reason, (name, ack.reason)
            assert not result.aliases_moved, name
        producer = Producer(producer_config(settings))
        producer.produce(settings.topics.control, b"\x00\x00\x00\x00\x04garbage", b"champion")
        producer.produce(
            settings.topics.control,
            _encode(settings, ControlCommand("c-unknown", "explode", None, "pytest", 1)),
            b"explode",
        )
        producer.flush(10)
        wait_for(lambda: running.loop.switch.refused >= len(REFUSALS) + 2, 30, "two more refusals")
        produce(settings, ProduceOptions(events=300, seed=4))
        assert len(read_topic(settings, settings.topics.predictions, 300)) == 300
        wait_for(
            lambda: (
                query_warehouse(settings, "SELECT count() FROM control_events")[1][0][0]
                >= len(REFUSALS) + 2
            ),
            30,
            "control events stored",
        )
    assert running.loop.switch.models.versions == ("1", None)
    versions = query_warehouse(settings, "SELECT DISTINCT model_version FROM predictions")[1]
    assert versions == [["1"]]
    refusals = query_warehouse(
        settings,
        "SELECT command, reason FROM control_events WHERE status = 'refused' ORDER BY reason",
    )[1]
    assert len(refusals) == len(REFUSALS) + 2, "\n".join(map(str, refusals))
    assert any(row[0] == "malformed" for row in refusals)
    assert any("unknown command 'explode'" in row[1] for row in refusals)


def _encode(settings, command: ControlCommand) -> bytes:
    return ControlCodecs(settings, schema_registry(settings)).encode_command(command)


def test_a_starting_worker_replays_the_control_topic_to_its_real_end(
    make_settings, swap_models, running_worker
):
    """Commands produced in one batch: the local broker reports a wrong end offset for them."""
    settings = make_settings(model_dir=swap_models)
    codecs = ControlCodecs(settings, schema_registry(settings))
    producer = Producer(producer_config(settings, **{"linger.ms": 200}))
    for kind, version in [
        (CommandKind.PROMOTE, "2"),
        (CommandKind.SET_CHALLENGER, "1"),
        (CommandKind.PROMOTE, "99"),  # refused on replay too
        (CommandKind.CLEAR_CHALLENGER, None),
        (CommandKind.PROMOTE, "1"),
        (CommandKind.PROMOTE, "2"),
        (CommandKind.SET_CHALLENGER, "1"),
    ]:
        command = ControlCommand.new(kind, version, "pytest")
        producer.produce(settings.topics.control, codecs.encode_command(command), command.key())
    assert producer.flush(10) == 0
    produce(settings, ProduceOptions(events=500, seed=8))
    with running_worker(settings) as running:
        predictions = read_topic(settings, settings.topics.predictions, 500)
        assert running.loop.switch.models.versions == ("2", "1")
    codec = topic_codec(settings, schema_registry(settings), "predictions")
    records = [codec.decode(m.value()) for m in predictions]
    assert len(records) == 500
    assert {(r["model_version"], r["challenger_version"]) for r in records} == {("2", "1")}
    assert all(r["challenger_score"] is not None for r in records)


def test_cli_promote_and_rollback_wait_for_live_workers(
    make_settings, swap_models, running_worker, monkeypatch, tmp_path
):
    import shutil

    from typer.testing import CliRunner

    from stream_app.cli import app
    from stream_app.processes import settings_env

    models = tmp_path / "models"
    shutil.copytree(swap_models, models)  # the CLI writes aliases: keep the module's copy intact
    settings = make_settings(model_dir=models, heartbeat_interval_s=0.5)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    with running_worker(settings) as running:
        wait_for(lambda: running.loop.stats.assigned, 60, "assignment")
        promoted = runner.invoke(app, ["models", "promote", "2", "--timeout", "20"])
        assert promoted.exit_code == 0, promoted.output
        assert settings.worker_id in promoted.stdout and "applied" in promoted.stdout
        assert FileModelStore(models).aliases()["champion"] == "2"
        assert running.loop.switch.models.versions == ("2", None)
        refused = runner.invoke(app, ["models", "challenger", "4", "--timeout", "20"])
        assert refused.exit_code == 1 and "refused" in refused.stdout
        assert "challenger" not in FileModelStore(models).aliases()
        rolled_back = runner.invoke(app, ["models", "rollback", "--timeout", "20"])
        assert rolled_back.exit_code == 0, rolled_back.output
        assert FileModelStore(models).aliases()["champion"] == "1"
        assert running.loop.switch.models.versions == ("1", None)
    history = FileModelStore(models).alias_history()
    assert [(h["alias"], h["from"], h["to"]) for h in history][-2:] == [
        ("champion", "1", "2"),
        ("champion", "2", "1"),
    ]


def test_promote_waits_for_the_live_workers_and_moves_aliases_only_when_all_applied(
    make_settings, swap_models, running_worker, tmp_path
):
    models = copy_of(swap_models, tmp_path)
    settings = make_settings(model_dir=models, heartbeat_interval_s=0.5)
    one = settings.model_copy(update={"worker_id": "worker-a"})
    two = settings.model_copy(update={"worker_id": "worker-b", "worker_web_port": 0})
    with running_worker(one) as a:
        with running_worker(two) as b:
            wait_for(lambda: b.loop.stats.assigned, 60, "the second worker assigned")
        # worker-b announced its stop: nobody waits for it
        promoted = promotion.promote(settings, "2", timeout_s=20)
        assert (promoted.expected, promoted.applied) == ({"worker-a"}, ["worker-a"])
        assert promoted.aliases_moved and FileModelStore(models).aliases()["champion"] == "2"
        assert a.loop.switch.models.versions == ("2", None)
        # a worker that does not answer keeps the registry where it was
        silent = promotion.issue(
            settings, CommandKind.ROLLBACK, "1", 5, "pytest", {"worker-a", "ghost"}
        )
        assert (silent.applied, silent.silent) == (["worker-a"], ["ghost"])
        assert not silent.aliases_moved and FileModelStore(models).aliases()["champion"] == "2"
