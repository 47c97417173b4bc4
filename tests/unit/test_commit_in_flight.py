"""Exactly-once commits in flight while the next batch is scored: the batch's outputs and offsets
wait for the commit and go into the next transaction; a commit that is aborted takes the batch
scored meanwhile with it (rewound, read again)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from stream_app.errors import ProducerFenced
from stream_app.scoring.outputs import Outputs
from stream_app.scoring.transactions import ATTEMPT_S, TransactionalCheckpointer
from stream_app.state.store import CardStore


class Producer:
    """Logs the transactional calls; ``commit_transaction`` waits for ``release`` and then
    raises ``commit_error`` if set."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = threading.Event()
        self.commit_error: KafkaError | None = None
        self.abort_timeouts = 0  # abort_transaction times out this many times first
        self.unacknowledged = 0  # what flush leaves unacknowledged, however long it waits
        self.flush_raises: BaseException | None = None

    def __len__(self) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        def call(*_args: Any, **_kwargs: Any) -> int:
            self.calls.append(name)
            return 0

        return call

    def flush(self, timeout: float) -> int:
        self.calls.append(f"flush {timeout:g}")
        if self.flush_raises is not None:
            raise self.flush_raises
        return self.unacknowledged

    def commit_transaction(self, _timeout: float) -> None:
        self.release.wait(10)
        self.calls.append("commit_transaction")
        if self.commit_error is not None:
            raise KafkaException(self.commit_error)

    def abort_transaction(self, _timeout: float) -> None:
        self.calls.append("abort_transaction")
        if self.abort_timeouts:
            self.abort_timeouts -= 1
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, retriable=True))


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


def checkpointer(
    stopping: threading.Event | None = None,
) -> tuple[TransactionalCheckpointer, Producer, Consumer, Restorer]:
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
        stopping=(stopping or threading.Event()).is_set,
    )
    checkpoints.scored({("in", 0): 50})
    return checkpoints, producer, consumer, restorer


def test_the_next_transaction_begins_only_once_the_commit_in_flight_is_done() -> None:
    checkpoints, producer, _, _ = checkpointer()
    scored_since = checkpoints.uncommitted.since  # for /health: scored, not yet committed
    assert scored_since is not None
    assert checkpoints.step()  # started, not finished: the loop goes on scoring
    assert checkpoints.uncommitted.since == scored_since
    assert "commit_transaction" not in producer.calls
    assert producer.calls.count("begin_transaction") == 1
    assert not checkpoints.step()  # nothing new while it is in flight

    threading.Timer(0.2, producer.release.set).start()
    assert checkpoints.await_commit()  # before the next batch's outputs are produced
    assert producer.calls[-2:] == ["commit_transaction", "begin_transaction"]
    assert checkpoints.commits_dropped == 0
    assert checkpoints.uncommitted.since is None


def test_a_commit_aborted_in_flight_drops_the_batch_scored_meanwhile_and_rewinds() -> None:
    checkpoints, producer, consumer, restorer = checkpointer()
    producer.commit_error = KafkaError(KafkaError.INVALID_TXN_STATE, txn_requires_abort=True)
    assert checkpoints.step()
    producer.release.set()

    assert not checkpoints.await_commit()  # the batch scored meanwhile is dropped
    assert producer.calls[-2:] == ["abort_transaction", "begin_transaction"]
    assert consumer.seeks == [("in", 0, 40)] and restorer.restored == [0]
    assert checkpoints.commits_dropped == 1
    assert checkpoints.uncommitted.since is None  # rewound: nothing waits, it is read again


def abort_needed() -> KafkaError:
    return KafkaError(KafkaError.INVALID_TXN_STATE, txn_requires_abort=True)


def test_an_abort_with_the_broker_away_is_asked_again_until_it_answers() -> None:
    checkpoints, producer, consumer, _ = checkpointer()
    producer.commit_error, producer.abort_timeouts = abort_needed(), 3
    assert checkpoints.step()
    producer.release.set()

    assert not checkpoints.await_commit()
    assert producer.calls.count("abort_transaction") == 4  # three timed out, the fourth answered
    assert producer.calls[-1] == "begin_transaction" and consumer.seeks == [("in", 0, 40)]


def test_a_stop_with_the_broker_away_leaves_the_transaction_to_the_broker() -> None:
    stopping = threading.Event()
    checkpoints, producer, consumer, _ = checkpointer(stopping)
    producer.commit_error, producer.abort_timeouts = abort_needed(), 1_000_000
    assert checkpoints.step()
    stopping.set()
    producer.release.set()

    assert not checkpoints.complete()  # no exception: the worker stops cleanly
    assert producer.calls.count("abort_transaction") == 1  # given up at once, when stopping
    assert consumer.seeks == [] and "begin_transaction" not in producer.calls[-1:]
    assert not checkpoints.complete()  # nothing more is sent into the abandoned transaction

    checkpoints.scored({("in", 0): 60})  # a batch fetched before the outage, scored meanwhile
    checkpoints.forget({("in", 0)})  # the group's session expired: lost while stopping
    assert producer.calls.count("abort_transaction") == 1  # no second abort, no second wait


def test_a_stop_ends_the_wait_for_unacknowledged_outputs() -> None:
    stopping = threading.Event()
    checkpoints, producer, _, _ = checkpointer(stopping)
    producer.unacknowledged = 500  # the broker is away
    stopping.set()
    assert checkpoints.step()
    producer.release.set()

    checkpoints.await_commit()
    # one attempt's wait, not asked again for CALL_TIMEOUT_S
    assert [c for c in producer.calls if c.startswith("flush")] == [f"flush {ATTEMPT_S:g}"]


def fenced_in_flush(served_a_delivery_report_after_it: bool) -> BaseException:
    """How confluent-kafka's flush raises the fatal error of a fenced producer: as such, or as a
    SystemError caused by it when a delivery report was served after it in the same call."""
    fenced = KafkaException(KafkaError(KafkaError._FENCED, "old epoch", fatal=True))
    if not served_a_delivery_report_after_it:
        return fenced
    error = SystemError("<method 'partition' of 'cimpl.Message' objects> returned a result with "
                        "an exception set")  # fmt: skip
    error.__cause__ = fenced
    return error


@pytest.mark.parametrize("wrapped", [False, True], ids=["as-is", "as-system-error"])
def test_a_producer_fenced_during_the_commits_flush_is_fenced_not_a_crash(wrapped: bool) -> None:
    checkpoints, producer, _, _ = checkpointer()
    producer.flush_raises = fenced_in_flush(wrapped)
    assert checkpoints.step()
    with pytest.raises(ProducerFenced, match="_FENCED"):  # the loop stays up, unhealthy
        checkpoints.await_commit()
