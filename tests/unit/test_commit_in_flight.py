"""Exactly-once commits in flight while the next batch is scored: the batch's outputs and offsets
wait for the commit and go into the next transaction; a commit that is aborted takes the batch
scored meanwhile with it (rewound, read again)."""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from stream_app.scoring.outputs import Outputs
from stream_app.scoring.transactions import TransactionalCheckpointer
from stream_app.state.store import CardStore


class Producer:
    """Logs the transactional calls; ``commit_transaction`` waits for ``release`` and then
    raises ``commit_error`` if set."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = threading.Event()
        self.commit_error: KafkaError | None = None

    def __len__(self) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        def call(*_args: Any, **_kwargs: Any) -> int:
            self.calls.append(name)
            return 0

        return call

    def commit_transaction(self, _timeout: float) -> None:
        self.release.wait(10)
        self.calls.append("commit_transaction")
        if self.commit_error is not None:
            raise KafkaException(self.commit_error)


class Consumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[str, int, int]] = []

    def consumer_group_metadata(self) -> object:
        return object()

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("in", 0)]

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 40) for tp in partitions]

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))


class Restorer:
    def __init__(self) -> None:
        self.restored: list[int] = []

    def restore(self, _store: CardStore, partition: int) -> int:
        self.restored.append(partition)
        return 0


def checkpointer() -> tuple[TransactionalCheckpointer, Producer, Consumer, Restorer]:
    outputs = Outputs({"bootstrap.servers": "127.0.0.1:1", "log_level": 0})
    outputs.producer.purge()
    producer = outputs.producer = Producer()  # type: ignore[assignment]
    consumer, restorer = Consumer(), Restorer()
    checkpoints = TransactionalCheckpointer(
        CardStore(),
        consumer,
        outputs,
        restorer,
        "state",
        interval_s=0.0,  # type: ignore[arg-type]
    )
    checkpoints.scored({("in", 0): 50})
    return checkpoints, producer, consumer, restorer


def test_the_next_transaction_begins_only_once_the_commit_in_flight_is_done() -> None:
    checkpoints, producer, _, _ = checkpointer()
    assert checkpoints.step()  # started, not finished: the loop goes on scoring
    assert "commit_transaction" not in producer.calls
    assert producer.calls.count("begin_transaction") == 1
    assert not checkpoints.step()  # nothing new while it is in flight

    threading.Timer(0.2, producer.release.set).start()
    assert checkpoints.await_commit()  # before the next batch's outputs are produced
    assert producer.calls[-2:] == ["commit_transaction", "begin_transaction"]
    assert checkpoints.commits_dropped == 0


def test_a_commit_aborted_in_flight_drops_the_batch_scored_meanwhile_and_rewinds() -> None:
    checkpoints, producer, consumer, restorer = checkpointer()
    producer.commit_error = KafkaError(KafkaError.INVALID_TXN_STATE, txn_requires_abort=True)
    assert checkpoints.step()
    producer.release.set()

    assert not checkpoints.await_commit()  # the batch scored meanwhile is dropped
    assert producer.calls[-2:] == ["abort_transaction", "begin_transaction"]
    assert consumer.seeks == [("in", 0, 40)] and restorer.restored == [0]
    assert checkpoints.commits_dropped == 1
