"""Signed control commands through the real broker: with signing required, every live worker
refuses an unsigned, a tampered or an unknown-version promote, keeps scoring on its champion and
says so on the status topic; a correctly signed promote is applied (docs/security.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest
from pydantic import SecretStr

from models.registry import FileModelStore, ModelMetadata
from models.train import TrainingConfig, train_model
from stream_app.control import promotion
from stream_app.control.commands import CommandKind
from stream_app.devtools.produce import ProduceOptions
from stream_app.warehouse.sql import query_rows
from tests.integration.conftest import producing, wait_for, wait_until_stored

pytestmark = pytest.mark.integration

KEY = "integration-signing-key-never-shown"


@pytest.fixture(scope="module")
def signed_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 champion, v2 a good alternative, v3 the same text as v2 (tampered per test)."""
    directory = tmp_path_factory.mktemp("signed-models")
    store = FileModelStore(directory)
    train_model(store, TrainingConfig(events=20_000, num_trees=30))
    v2 = train_model(store, TrainingConfig(events=20_000, num_trees=40, seed=2), promote=False)
    store.register(
        store.load_text(v2.version), feature_set_version=v2.feature_set_version,
        feature_names=v2.feature_names, threshold=v2.threshold, training={}, evaluation={},
    )  # fmt: skip
    return directory


def test_only_correctly_signed_commands_are_applied_by_every_worker(
    make_settings, signed_models, running_worker, running_sink, tmp_path
):
    workers_dir, operator_dir = tmp_path / "workers", tmp_path / "operator"
    shutil.copytree(signed_models, workers_dir)
    shutil.copytree(signed_models, operator_dir)
    # the workers' registry: version 3's threshold raised behind the operator's back
    path = workers_dir / "3" / "metadata.json"
    raised = msgspec.structs.replace(
        msgspec.json.decode(path.read_bytes(), type=ModelMetadata), threshold=0.999
    )
    path.write_bytes(msgspec.json.encode(raised))
    # the operator's registry holds a version 4 that the workers' does not
    v2 = FileModelStore(operator_dir).metadata("2")
    FileModelStore(operator_dir).register(
        FileModelStore(operator_dir).load_text("2"), feature_set_version=v2.feature_set_version,
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

    options = ProduceOptions(events=12_000, rate=1500, seed=31)
    with running_sink(settings), running_worker(one) as a, running_worker(two) as b:
        loops = [a.loop, b.loop]
        with producing(settings, options) as produced:
            wait_for(lambda: all(loop.stats.assigned for loop in loops), 60, "both assigned")
            wait_for(lambda: sum(loop.stats.scored for loop in loops) > 1000, 60, "load")
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
                scored = sum(loop.stats.scored for loop in loops)
                wait_for(lambda s=scored: sum(lp.stats.scored for lp in loops) > s + 500, 60)
                assert [loop.switch.models.versions for loop in loops] == [("1", None)] * 2
            applied = issue(signed, "2")
            assert applied.applied == sorted(workers) and applied.aliases_moved
            assert FileModelStore(operator_dir).aliases()["champion"] == "2"
        report = produced["report"]
        wait_until_stored(settings, report)
        wait_for(
            lambda: (
                query_rows(
                    settings, "SELECT count() FROM control_events WHERE command = 'promote'"
                )[1][0][0]
                >= 8
            ),
            60,
            "acknowledgements stored",
        )
    events = query_rows(
        settings,
        "SELECT status, version, count() FROM control_events WHERE command = 'promote' "
        "GROUP BY 1, 2 ORDER BY 1, 2",
    )[1]
    assert events == [["applied", "2", 2], ["refused", "2", 2], ["refused", "3", 2],
                      ["refused", "4", 2]]  # fmt: skip
    versions = query_rows(settings, "SELECT DISTINCT model_version FROM predictions ORDER BY 1")
    assert versions[1] == [["1"], ["2"]]  # never the tampered 3
