"""The local stack the demo, the benchmark and the integration tests run on.

One Apache Kafka node (:class:`LocalBroker`) unless a broker is given, a state directory with the
model registry and (unless another warehouse is given) chDB in it, and :meth:`LocalStack.settings`
for settings on them, with a name of its own for every topic, group and database when asked.
Web servers bind port 0 in those settings: a child reports the port it got
(:meth:`stream_app.processes.ChildProcess.web_port`), no port is picked ahead of it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.registry import CHAMPION, FileModelStore, ModelMetadata
from models.train import TrainingConfig, train_model
from stream_app.catalogue import separate_topics
from stream_app.features import FEATURE_SET_VERSION
from stream_app.kafka.local_broker import LocalBroker
from stream_app.kafka.topics import ensure_topics
from stream_app.settings import Settings, Topics

Say = Callable[[str], None]


class LocalStack:
    """A broker, a state directory and a model registry; a context manager that stops the broker.

    ``bootstrap_servers``: a broker the stack neither starts nor stops (testcontainers' Kafka);
    else a local node logging to ``state_dir/broker``, or to a directory thrown away on
    :meth:`stop` with ``keep_broker_log=False``. ``warehouse_dsn``: chDB in
    ``state_dir/warehouse`` unless given.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        bootstrap_servers: str | None = None,
        warehouse_dsn: str | None = None,
        keep_broker_log: bool = True,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.logs = self.state_dir / "logs"
        self.model_dir = self.state_dir / "models"
        self.warehouse_dsn = warehouse_dsn or f"chdb://{self.state_dir / 'warehouse'}"
        self._external_broker = bootstrap_servers or ""
        self.broker: LocalBroker | None = None
        if not self._external_broker:
            broker_dir = self.state_dir / "broker" if keep_broker_log else None
            self.broker = LocalBroker.for_settings(Settings(), broker_dir)

    @property
    def bootstrap_servers(self) -> str:
        """The broker's address (a local node's port is known once it started)."""
        return self.broker.bootstrap_servers if self.broker else self._external_broker

    def start(self) -> LocalStack:
        """Start the local broker (if the stack has one); return once it answers."""
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.broker is not None:
            self.broker.start()
        return self

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()

    def ensure_model(self, training: TrainingConfig, say: Say) -> ModelMetadata:
        """The registry's champion; trained first if there is none or it uses another feature
        set."""
        store = FileModelStore(self.model_dir)
        champion = store.aliases().get(CHAMPION)
        if champion is not None:
            metadata = store.metadata(champion)
            if metadata.feature_set_version == FEATURE_SET_VERSION:
                say(f"champion is version {champion}")
                return metadata
            say(f"version {champion} uses another feature set")
        return train_model(store, training, progress=say)

    def settings(
        self, name: str | None = None, partitions: int = Topics().partitions, **overrides: Any
    ) -> Settings:
        """Settings on this stack, web servers on free ports (0), topics created.

        With ``name``: every topic, both consumer groups, the database and the worker id are
        named after it, so that users of one stack (tests, benchmark phases) never mix.
        """
        values: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "model_dir": self.model_dir,
            "warehouse_dsn": self.warehouse_dsn,
            "schema_registry_dir": self.state_dir / "schemas",  # ids registered at run time
            "sql_port": 0,
            "worker_web_port": 0,
            "online_web_port": 0,
            "retrainer_web_port": 0,
        }
        if name is not None:
            values |= {
                "topics": separate_topics(name, partitions),
                "worker_group": f"{name}-workers",
                "sink_group": f"{name}-sink",
                "warehouse_database": name.replace("-", "_"),
                "worker_id": name,
            }
        settings = Settings(**(values | overrides))
        ensure_topics(settings)
        return settings

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
