"""Committing through a broker restart: retried while the coordinator is away, refused offsets
of a lost membership given up, anything else raised."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from stream_app.kafka.commit import commit_offsets


class Consumer:
    """Answers each commit with the next of ``errors`` (None: accepted)."""

    def __init__(self, *errors: int | None) -> None:
        self.errors = list(errors)
        self.commits: list[Any] = []

    def commit(self, offsets: Any, asynchronous: bool) -> None:
        self.commits.append(offsets)
        code = self.errors.pop(0)
        if code is not None:
            raise KafkaException(KafkaError(code))


def test_a_commit_is_tried_again_while_the_coordinator_is_away() -> None:
    consumer = Consumer(KafkaError._WAIT_COORD, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, None)
    assert commit_offsets(consumer, {("t", 0): 5})
    assert len(consumer.commits) == 3
    assert [(tp.topic, tp.partition, tp.offset) for tp in consumer.commits[-1]] == [("t", 0, 5)]


def test_a_commit_refused_to_a_lost_member_is_given_up() -> None:
    consumer = Consumer(KafkaError.UNKNOWN_MEMBER_ID)
    assert not commit_offsets(consumer, {("t", 0): 5})


def test_any_other_commit_error_is_raised() -> None:
    consumer = Consumer(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        commit_offsets(consumer, {("t", 0): 5})


def test_a_coordinator_away_for_longer_than_the_retry_window_is_raised() -> None:
    consumer = Consumer(KafkaError._WAIT_COORD, KafkaError._WAIT_COORD)
    with pytest.raises(KafkaException):
        commit_offsets(consumer, {("t", 0): 5}, retry_for_s=0.1)


def test_a_stop_while_the_coordinator_is_away_leaves_the_offsets_uncommitted() -> None:
    consumer = Consumer(KafkaError._WAIT_COORD, KafkaError._WAIT_COORD, None)
    asked = []

    def stopping() -> bool:
        asked.append(True)
        return len(asked) == 2  # asked to stop after the first try again

    assert not commit_offsets(consumer, {("t", 0): 5}, stopping=stopping)
    assert len(consumer.commits) == 2  # the third, which would succeed, is never tried
