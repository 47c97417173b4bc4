"""Wait until a node's group and transaction coordinators serve, not only its metadata.

A fresh node creates ``__consumer_offsets`` and ``__transaction_state`` on the first request that
needs them, and a restarted one loads them again; meanwhile it answers ``NOT_COORDINATOR`` or
``COORDINATOR_LOAD_IN_PROGRESS``, and librdkafka waits before it asks again: a first consumer on
a fresh local node joined its group after ~3 s, ~2 s of it a JoinGroup retry's wait.
:meth:`LocalBroker.start` awaits both coordinators (in parallel) before it says the node is up,
so that the first clients of the demo, the benchmark and the tests find them ready (figures in
``docs/local-broker.md``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from stream_app.errors import BrokerError

#: the consumer group and transactional id the readiness requests use; the group never commits,
#: the transactional id never opens a transaction
READINESS_ID = "stream-app-readiness"
#: librdkafka's errors only: its warnings while a coordinator loads ("retrying") are the expected
#: answer here, not news for whoever reads the broker command's output
QUIET = {"log_level": 3}


def await_coordinators(bootstrap_servers: str, timeout_s: float) -> None:
    """Return once a group's committed offsets can be read and a transactional producer can be
    initialised on ``bootstrap_servers``; :class:`BrokerError` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    with ThreadPoolExecutor(2, thread_name_prefix="coordinators") as pool:
        groups = pool.submit(_groups_served, bootstrap_servers, deadline)
        transactions = pool.submit(_transactions_served, bootstrap_servers, deadline)
        groups.result()
        transactions.result()


def _groups_served(bootstrap_servers: str, deadline: float) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": READINESS_ID, **QUIET})
    try:
        _until_served(
            lambda left: consumer.committed([TopicPartition(READINESS_ID, 0)], timeout=left),
            "group coordinator",
            deadline,
        )
    finally:
        consumer.close()


def _transactions_served(bootstrap_servers: str, deadline: float) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap_servers, "transactional.id": READINESS_ID, **QUIET}
    )
    _until_served(producer.init_transactions, "transaction coordinator", deadline)


def _until_served(call: Callable[[float], object], what: str, deadline: float) -> None:
    """Ask ``call(seconds left)`` again while the coordinator is not ready: ``committed`` does
    not retry ``NOT_COORDINATOR`` itself."""
    while True:
        try:
            call(max(0.1, deadline - time.monotonic()))
            return
        except KafkaException as exc:
            if time.monotonic() >= deadline:
                raise BrokerError(f"the node's {what} did not answer in time: {exc}") from None
        time.sleep(0.05)
