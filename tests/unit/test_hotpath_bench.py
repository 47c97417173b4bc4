"""``stream-app bench hotpath``: the worker's stages measured in CPU time over in-memory records."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import FileModelStore
from models.train import TrainingConfig, train_model
from stream_app.devtools.bench.hotpath import measure_hotpath, memory_records
from tests.unit.conftest import PipelineKit

STAGES = {"decode", "features", "predict", "encode", "alerts", "release", "observe"}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A registry with a small champion of its own."""
    train_model(FileModelStore(tmp_path / "models"), TrainingConfig(events=3000, num_trees=5))
    return tmp_path / "models"


def test_every_stage_is_timed_in_cpu_and_the_process_total_covers_them(
    pipeline_kit: PipelineKit, model_dir: Path
) -> None:
    records = memory_records(2_000, partitions=4, seed=3)
    assert len({r.partition() for r in records}) == 4
    settings = pipeline_kit.settings.model_copy(update={"model_dir": model_dir})
    figures = measure_hotpath(settings, records, batch_size=500)
    stages = {name: value for name, value in figures.items() if name in STAGES}
    assert set(stages) == STAGES
    assert all(value > 0 for value in stages.values())
    # the scoring thread's CPU is part of the process's
    assert figures["total"] >= sum(stages.values())
    assert figures["other_threads"] == pytest.approx(figures["total"] - sum(stages.values()))
