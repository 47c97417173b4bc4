"""What every phase runs on: one local broker, one model, and per phase fresh names."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.registry import FileModelStore
from models.train import TrainingConfig, train_model
from stream_app.devtools.bench.deployment import Deployment
from stream_app.features import FEATURE_NAMES
from stream_app.kafka.kafka_jars import KAFKA_VERSION
from stream_app.kafka.local_broker import LocalBroker, free_port
from stream_app.kafka.topics import ensure_topics
from stream_app.settings import Settings, Topics

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
Say = Callable[[str], None]


@dataclass(frozen=True)
class ModelInfo:
    version: str
    trees: int
    leaves: int
    features: int


def fresh_topics(prefix: str, partitions: int) -> Topics:
    """Every topic of the project under a name of its own, so that phases never mix.

    >>> fresh_topics("bench-1", 2).transactions
    'bench-1-transactions'
    """
    names = {
        field: f"{prefix}-{field.replace('_', '-')}"
        for field, value in Topics().model_dump().items()
        if isinstance(value, str)
    }
    return Topics(**names, partitions=partitions)


class BenchStack:
    """Owns the broker and every deployment; :meth:`close` stops them all, whatever happened."""

    def __init__(self, state_dir: Path, partitions: int, say: Say) -> None:
        self.state_dir = state_dir.resolve()
        self.partitions = partitions
        self.say = say
        self.logs = self.state_dir / "logs"
        self.broker = LocalBroker.for_settings(Settings(), self.state_dir / "broker")
        self.deployments: list[Deployment] = []
        self._run = uuid.uuid4().hex[:6]

    def start(self, training: TrainingConfig) -> ModelInfo:
        """Wipe the state directory, start the broker, train the model."""
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        self.logs.mkdir(parents=True)
        # phases register schemas under their own topic names: in a copy, never in the repo's
        shutil.copytree(SCHEMAS, self.state_dir / "schemas")
        self.broker.start()
        self.say(
            f"broker Apache Kafka {KAFKA_VERSION} on {self.broker.bootstrap_servers}; "
            f"logs in {self.logs}/"
        )
        store = FileModelStore(self.state_dir / "models")
        metadata = train_model(store, training, progress=lambda m: self.say(f"model: {m}"))
        leaves = [
            int(line.split("=", 1)[1])
            for line in store.load_text(metadata.version).splitlines()
            if line.startswith("num_leaves=")
        ]
        return ModelInfo(metadata.version, metadata.num_trees, max(leaves), len(FEATURE_NAMES))

    def phase_settings(self, phase: str) -> Settings:
        """Settings with this phase's own topics (created), groups and database."""
        name = f"bench-{self._run}-{phase}"
        settings = Settings(
            bootstrap_servers=self.broker.bootstrap_servers,
            topics=fresh_topics(name, self.partitions),
            schemas_dir=self.state_dir / "schemas",
            model_dir=self.state_dir / "models",
            warehouse_dsn=f"chdb://{self.state_dir / 'warehouse'}",
            warehouse_database=f"bench_{phase.replace('-', '_')}",
            worker_group=f"{name}-workers",
            sink_group=f"{name}-sink",
            worker_id=f"bench-{phase}",
            worker_web_port=free_port(),
            sql_port=free_port(),
        )
        ensure_topics(settings)
        return settings

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
        self.broker.stop()
