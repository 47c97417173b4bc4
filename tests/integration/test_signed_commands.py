"""Signed control commands through the real broker: with signing required, every live worker
refuses an unsigned, a tampered or an unknown-version promote, keeps scoring on its champion and
says so on the status topic; a correctly signed promote is applied (docs/security.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from models.registry import ModelMetadata
from stream_app.cli import app
from stream_app.control import promotion
from stream_app.control.commands import CommandKind
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.processes import settings_env
from tests.integration.conftest import copy_registry, count, query_warehouse, wait_for

pytestmark = pytest.mark.integration

KEY = "integration-signing-key-never-shown"


@pytest.fixture(scope="module")
def signed_models(two_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 champion, v2 a good alternative, v3 the same text as v2 (tampered per test)."""
    directory = tmp_path_factory.mktemp("signed-models")
    store = copy_registry(two_models, directory)
    v2 = store.metadata("2")
    store.register(
        store.load_text(v2.version), feature_set_version=v2.feature_set_version,
        feature_names=v2.feature_names, threshold=v2.threshold, training={}, evaluation={},
    )  # fmt: skip
    return directory


def test_only_correctly_signed_commands_are_applied_by_every_worker(
    make_settings, signed_models, running_worker, running_sink, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    workers_dir, operator_dir = tmp_path / "workers", tmp_path / "operator"
    copy_registry(signed_models, workers_dir)
    operator_store = copy_registry(signed_models, operator_dir)
    # the workers' registry: version 3's threshold raised behind the operator's back
    path = workers_dir / "3" / "metadata.json"
    raised = msgspec.structs.replace(
        msgspec.json.decode(path.read_bytes(), type=ModelMetadata), threshold=0.999
    )
    path.write_bytes(msgspec.json.encode(raised))
    # the operator's registry holds a version 4 that the workers' does not
    v2 = operator_store.metadata("2")
    operator_store.register(
        operator_store.load_text("2"), feature_set_version=v2.feature_set_version,
        feature_names=v2.feature_names, threshold=0.5, training={}, evaluation={},
    )  # fmt: skip
    settings = make_settings(
        model_dir=workers_dir,
        batch_size=200,
        require_signed_commands=True,
        control_signing_keys={"k1": SecretStr(KEY)},
    )
    one = settings.model_copy(update={"worker_id": "worker-a"})
    two = settings.model_copy(update={"worker_id": "worker-b", "worker_web_port": 0})
    signed = settings.model_copy(update={"model_dir": operator_dir, "control_signing_key_id": "k1"})
    unsigned = settings.model_copy(update={"model_dir": operator_dir})
    workers = {"worker-a", "worker-b"}

    def issue(operator, version: str) -> promotion.PromotionResult:
        return promotion.issue(operator, CommandKind.PROMOTE, version, 30, "pytest", workers)

    def scored_by_version(events: int, seed: int) -> dict[str, int]:
        """Produce ``events`` more, wait until stored; predictions per model version so far."""
        before = count(settings, "SELECT count() FROM predictions")
        report = produce(settings, ProduceOptions(events=events, seed=seed))
        wait_for(
            lambda: count(settings, "SELECT count() FROM predictions") >= before + report.valid,
            90,
            "predictions stored",
        )
        sql = "SELECT model_version, count() FROM predictions GROUP BY 1"
        return {version: n for version, n in query_warehouse(settings, sql)[1]}

    with running_sink(settings), running_worker(one) as a, running_worker(two) as b:
        loops = [a.loop, b.loop]
        wait_for(lambda: all(loop.stats.assigned for loop in loops), 60, "both assigned")
        for operator, version, reason in [
            (unsigned, "2", "unsigned command"),
            (signed, "3", "its metadata (threshold, feature set) differs from the signed"),
            (signed, "4", "unknown model version '4'"),
        ]:
            refused = issue(operator, version)
            assert refused.refused == sorted(workers), (version, refused.acks)
            assert all(reason in ack.reason for ack in refused.acks.values()), refused.acks
            assert {ack.champion_version for ack in refused.acks.values()} == {"1"}
            assert not refused.aliases_moved
        assert [loop.switch.models.versions for loop in loops] == [("1", None)] * 2
        assert scored_by_version(2000, seed=31) == {"1": 2000}  # still scoring on version 1
        applied = issue(signed, "2")
        assert applied.applied == sorted(workers) and applied.aliases_moved
        assert operator_store.aliases()["champion"] == "2"
        assert scored_by_version(2000, seed=32) == {"1": 2000, "2": 2000}  # never the tampered 3
        # `models list` shows what every live worker runs, and says where a registry disagrees
        for name, value in settings_env(signed).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("COLUMNS", "250")
        listed = CliRunner().invoke(app, ["models", "list"])
        assert listed.exit_code == 0 and "worker-a (champion), worker-b (champion)" in listed.output
        assert "the registry says" not in listed.output, listed.output
        monkeypatch.setenv("STREAM_APP_MODEL_DIR", str(workers_dir))  # its aliases never moved
        listed = CliRunner().invoke(app, ["models", "list"])
        assert "worker-a runs champion 2, challenger None; the registry says 1" in listed.output
        wait_for(
            lambda: (
                count(settings, "SELECT count() FROM control_events WHERE command = 'promote'") >= 8
            ),
            60,
            "acknowledgements stored",
        )
    events = query_warehouse(
        settings,
        "SELECT status, version, count() FROM control_events WHERE command = 'promote' "
        "GROUP BY 1, 2 ORDER BY 1, 2",
    )[1]
    assert events == [["applied", "2", 2], ["refused", "2", 2], ["refused", "3", 2],
                      ["refused", "4", 2]]  # fmt: skip
    # a worker starting now replays the compacted topic: the signed promote is applied however
    # old (no clock window on replay, here a 1 ms one for live commands), the others refused again
    restarted = settings.model_copy(
        update={"worker_id": "worker-c", "control_command_max_age_s": 0.001}
    )
    with running_worker(restarted) as c:
        wait_for(lambda: c.loop.switch.models.versions == ("2", None), 60, "the replayed promote")
    # the workers logged each refusal with its reason, never the key
    assert "refused unsigned command" in caplog.text and KEY not in caplog.text
