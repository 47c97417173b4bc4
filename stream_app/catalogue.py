"""The topic catalogue: one declaration per topic of the project, from which the rest is derived.

Topic creation and the start-up check (:mod:`stream_app.kafka.topics`), the codecs
(:mod:`stream_app.codecs.factory`), the topics a worker checks and the sink consumes, and the
sink's routes into the warehouse tables all read :data:`CATALOGUE`; adding a topic is one entry
here plus its schema in ``schemas/`` (and its table in ``warehouse/schema.py`` if it is stored).
Names stay settings (:class:`~stream_app.settings.Topics`): an entry names the field that holds
its topic's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, Flag, auto

from stream_app.settings import Topics


class Key(Enum):
    """What a topic's records are keyed by."""

    CARD_ID = "card id"
    """spread over ``topics.partitions`` partitions, partition p beside input partition p"""
    ALIAS = "the alias a command moves"
    WORKER_ID = "worker id"
    MODEL_VERSION = "model version"
    RUN_ID = "run id"


class Worker(Flag):
    """What a scoring worker does with a topic (it checks at start every topic it uses)."""

    NONE = 0
    READS = auto()
    WRITES = auto()


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name setting, key, schema, partitions, compaction and who uses it."""

    field: str
    """the :class:`~stream_app.settings.Topics` field that names it"""
    key: Key
    """records keyed by card id follow the input's partitions; every other topic has one
    partition (one total order)"""
    schema: str | None
    """Avro schema file in ``schemas/`` (subject ``<topic>-value``); None: not Avro"""
    compacted: bool
    """``cleanup.policy=compact`` (the last record per key is what counts), else ``delete``"""
    worker: Worker
    """what a scoring worker does with it (what it checks at start)"""
    table: str | None
    """the warehouse table (its view) the sink stores it in; None: the sink does not read it"""

    def name(self, topics: Topics) -> str:
        """The topic's name under these settings."""
        name: str = getattr(topics, self.field)
        return name

    def partitions(self, topics: Topics) -> int:
        return topics.partitions if self.key is Key.CARD_ID else 1

    @property
    def config(self) -> dict[str, str]:
        """The topic configs it is created with (and checked against)."""
        return {"cleanup.policy": "compact"} if self.compacted else {}


TRANSACTIONS = TopicSpec(
    "transactions", Key.CARD_ID, "transaction.avsc", compacted=False, worker=Worker.READS,
    table="events",
)  # fmt: skip
PREDICTIONS = TopicSpec(
    "predictions", Key.CARD_ID, "prediction.avsc", compacted=False, worker=Worker.WRITES,
    table="predictions",
)  # fmt: skip
DEAD_LETTERS = TopicSpec(
    "dead_letters", Key.CARD_ID, "dead_letter.avsc", compacted=False, worker=Worker.WRITES,
    table="dead_letters",
)  # fmt: skip
ALERTS = TopicSpec(
    "alerts", Key.CARD_ID, "alert.avsc", compacted=False, worker=Worker.WRITES, table="alerts"
)
#: the changelog of per-card state: partition p holds the state of input partition p
CARD_STATE = TopicSpec(
    "card_state", Key.CARD_ID, None, compacted=True, worker=Worker.READS | Worker.WRITES,
    table=None,
)  # fmt: skip
CONTROL = TopicSpec(
    "control", Key.ALIAS, "control_command.avsc", compacted=True, worker=Worker.READS, table=None
)
CONTROL_STATUS = TopicSpec(
    "control_status", Key.WORKER_ID, "control_status.avsc", compacted=False,
    worker=Worker.WRITES, table="control_events",
)  # fmt: skip
MODEL_VERSIONS = TopicSpec(
    "model_versions", Key.MODEL_VERSION, "model_version.avsc", compacted=True,
    worker=Worker.NONE, table="model_versions",
)  # fmt: skip
#: delayed ground truth, keyed like the transactions so that a label meets its prediction
LABELS = TopicSpec(
    "labels", Key.CARD_ID, "label.avsc", compacted=False, worker=Worker.NONE, table="labels"
)
#: the worker's drift detections, keyed by model version (detections are rare: one total order)
DRIFT_EVENTS = TopicSpec(
    "drift_events", Key.MODEL_VERSION, "drift_event.avsc", compacted=False,
    worker=Worker.WRITES, table="drift_events",
)  # fmt: skip
#: every run of the retraining job, with its gate's decision (runs are rare: one total order)
RETRAIN_RUNS = TopicSpec(
    "retrain_runs", Key.RUN_ID, "retrain_run.avsc", compacted=False, worker=Worker.NONE,
    table="retrain_runs",
)  # fmt: skip
#: ``stream-app estimate``'s label-free quality estimates (rare: one total order)
QUALITY_ESTIMATES = TopicSpec(
    "quality_estimates", Key.MODEL_VERSION, "quality_estimate.avsc", compacted=False,
    worker=Worker.NONE, table="quality_estimates",
)  # fmt: skip
#: the feature vectors each worker scored (one record per batch and input partition, written to
#: the input's partition number), read by the online learner
SCORED_FEATURES = TopicSpec(
    "scored_features", Key.CARD_ID, "scored_features.avsc", compacted=False,
    worker=Worker.WRITES, table=None,
)  # fmt: skip
#: the online learner's shadow scores, with the predictions' fields (its own record name, so
#: that every schema id names one subject in both registries)
ONLINE_PREDICTIONS = TopicSpec(
    "online_predictions", Key.CARD_ID, "online_prediction.avsc", compacted=False,
    worker=Worker.NONE, table="online_predictions",
)  # fmt: skip

CATALOGUE = (
    TRANSACTIONS,
    PREDICTIONS,
    DEAD_LETTERS,
    ALERTS,
    CARD_STATE,
    CONTROL,
    CONTROL_STATUS,
    MODEL_VERSIONS,
    LABELS,
    DRIFT_EVENTS,
    RETRAIN_RUNS,
    QUALITY_ESTIMATES,
    SCORED_FEATURES,
    ONLINE_PREDICTIONS,
)

BY_FIELD = {spec.field: spec for spec in CATALOGUE}


#: the topics a scoring worker reads or writes
USED_BY_WORKER = tuple(spec for spec in CATALOGUE if spec.worker)
#: the topics the warehouse sink consumes → the table (its view) each lands in
STORED = {spec: spec.table for spec in CATALOGUE if spec.table}


def separate_topics(prefix: str, partitions: int) -> Topics:
    """Every topic of the catalogue under a name of its own, so that runs never mix.

    >>> separate_topics("bench-1", 2).card_state
    'bench-1-card-state'
    """
    names = {spec.field: f"{prefix}-{spec.field.replace('_', '-')}" for spec in CATALOGUE}
    return Topics(**names, partitions=partitions)
