"""A producer's ``poll`` and ``flush`` with its fatal errors named: what every producer of the
project (the worker's outputs, its transactions, the online learner's shadow predictions) calls."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException

from stream_app.errors import BrokerError, ProducerFenced

#: a transactional producer that another one with its ``transactional.id`` superseded
FENCED = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)


def fatal_error(error: KafkaError) -> BrokerError:
    """What a fatal producer error raises: :class:`ProducerFenced` when another producer with
    its ``transactional.id`` superseded it."""
    fatal = ProducerFenced if error.code() in FENCED else BrokerError
    return fatal(f"fatal producer error: {error}")


def serve(call: Callable[[float], int], timeout_s: float) -> int:
    """The producer's ``poll`` or ``flush`` (``call``): what it returns, or the producer's fatal
    error as :class:`ProducerFenced` or :class:`BrokerError`. confluent-kafka raises a fatal
    error from these calls as a ``KafkaException``, or as a ``SystemError`` caused by it when a
    delivery report is served after it in the same call.

    >>> serve(lambda timeout_s: 3, 1.0)
    3
    >>> def fenced(timeout_s):
    ...     raise KafkaException(KafkaError(KafkaError._FENCED, "old epoch", fatal=True))
    >>> try:
    ...     serve(fenced, 1.0)
    ... except ProducerFenced as exc:
    ...     print("fenced:", "old epoch" in str(exc))
    fenced: True
    """
    try:
        return call(timeout_s)
    except (KafkaException, SystemError) as exc:
        cause = exc if isinstance(exc, KafkaException) else exc.__cause__
        if not isinstance(cause, KafkaException) or not cause.args[0].fatal():
            raise
        raise fatal_error(cause.args[0]) from exc
