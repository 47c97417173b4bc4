"""What every phase runs on: one local stack (broker, model), and per phase fresh names."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.registry import FileModelStore
from models.train import TrainingConfig
from stream_app.devtools.bench.deployment import Deployment
from stream_app.devtools.stack import LocalStack, Say
from stream_app.features import FEATURE_NAMES
from stream_app.kafka.kafka_jars import KAFKA_VERSION
from stream_app.settings import ProcessingGuarantee, Settings


@dataclass(frozen=True)
class ModelInfo:
    version: str
    trees: int
    leaves: int
    features: int


class BenchStack:
    """Owns the broker and every deployment; :meth:`close` stops them all, whatever happened."""

    def __init__(self, state_dir: Path, partitions: int, say: Say) -> None:
        self.stack = LocalStack(state_dir)
        self.state_dir = self.stack.state_dir
        self.partitions = partitions
        self.say = say
        self.logs = self.stack.logs
        self.deployments: list[Deployment] = []
        self._run = uuid.uuid4().hex[:6]
        #: of the phases that follow (``stream-app bench guarantees`` alternates them)
        self.guarantee: ProcessingGuarantee = "at_least_once"
        #: exactly-once's commit interval in the phases that follow; None: the settings' own
        self.transaction_interval_ms: int | None = None

    def start(self, training: TrainingConfig) -> ModelInfo:
        """Wipe the state directory, start the broker, train the model."""
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        self.stack.start()
        self.say(
            f"broker Apache Kafka {KAFKA_VERSION} on {self.stack.bootstrap_servers}; "
            f"logs in {self.logs}/"
        )
        metadata = self.stack.ensure_model(training, lambda m: self.say(f"model: {m}"))
        leaves = [
            int(line.split("=", 1)[1])
            for line in FileModelStore(self.stack.model_dir)
            .load_text(metadata.version)
            .splitlines()
            if line.startswith("num_leaves=")
        ]
        return ModelInfo(metadata.version, metadata.num_trees, max(leaves), len(FEATURE_NAMES))

    @property
    def broker_pid(self) -> int:
        """The local broker's process (the benchmark always runs its own)."""
        assert self.stack.broker is not None, "the benchmark starts its own broker"
        return self.stack.broker.pid

    def phase_settings(self, phase: str, **overrides: Any) -> Settings:
        """Settings with this phase's own topics (created), groups and database, in
        :attr:`guarantee` and at :attr:`transaction_interval_ms` (each named in them unless it
        is the default)."""
        if self.guarantee != "at_least_once":
            phase = f"{phase}-{self.guarantee.replace('_', '-')}"
        if self.transaction_interval_ms is not None:
            phase = f"{phase}-{self.transaction_interval_ms}ms"
            overrides.setdefault("transaction_interval_ms", self.transaction_interval_ms)
        return self.stack.settings(
            f"bench-{self._run}-{phase}",
            self.partitions,
            warehouse_database=f"bench_{phase.replace('-', '_')}",
            worker_id=f"bench-{phase}",
            processing_guarantee=self.guarantee,
            **overrides,
        )

    def deploy(self, settings: Settings, phase: str, workers: int = 1) -> Deployment:
        deployment = Deployment(settings, phase, self.logs, workers)
        self.deployments.append(deployment)  # registered first: close() stops it whatever happens
        deployment.start()
        return deployment

    def undeploy(self, deployment: Deployment) -> None:
        deployment.stop()
        self.deployments.remove(deployment)

    def close(self) -> None:
        for deployment in reversed(self.deployments):
            deployment.stop()
        self.deployments.clear()
        self.stack.stop()
