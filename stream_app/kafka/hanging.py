"""Transactions a single-node broker's stop left hanging: found and aborted when it starts again.

A controlled shutdown of the only node first makes every partition leaderless, then stops the
transaction coordinator. A transaction whose commit reaches the coordinator in between (~35 ms)
is written ``CompleteCommit`` without its markers: Kafka 4.4's marker channel skips a partition
without a leader as if it were deleted. After the restart its records hold every
``read_committed`` reader of their partitions at the transaction's first offset, and its
committed offsets, pending for ever, hold the group's next member: the coordinator answers its
offset fetch ``UNSTABLE_OFFSET_COMMIT`` again and again, and it never fetches (fault 9 of
``docs/faults.md``; about one stop in seven under an exactly-once load). Nothing ever completes
such a transaction; Kafka's tool for it is ``kafka-transactions.sh find-hanging`` and ``abort``.

:func:`abort_hanging_transactions` runs those tools (``TransactionsCommand``, from the broker's
own jars) on a node that has just started on an existing log, and aborts each open transaction
older than the start: its records stay invisible, its offsets are discarded, so the group
resumes from its last committed offsets and reads those records again — each output once.
A cluster of several nodes moves leaders before a node stops and does not leave these.
"""

from __future__ import annotations

import logging
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from stream_app.errors import BrokerError

log = logging.getLogger(__name__)

TOOL = "org.apache.kafka.tools.TransactionsCommand"
TOOL_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class OpenTransaction:
    """One partition's part of a transaction that is open there, as ``find-hanging`` lists it."""

    topic: str
    partition: int
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    start_offset: int
    last_timestamp_ms: int


def parse_find_hanging(output: str) -> list[OpenTransaction]:
    """The rows of ``find-hanging``'s table (tab-separated, a header first).

    >>> parse_find_hanging(
    ...     "Topic\\tPartition\\tProducerId\\tProducerEpoch\\tCoordinatorEpoch\\tStartOffset\\t"
    ...     "LastTimestamp\\tDuration(min)\\t\\n"
    ...     "__consumer_offsets  \\t3  \\t1  \\t0  \\t0  \\t244  \\t1796322713391\\t6  \\t\\n"
    ... )  # doctest: +NORMALIZE_WHITESPACE
    [OpenTransaction(topic='__consumer_offsets', partition=3, producer_id=1, producer_epoch=0,
                     coordinator_epoch=0, start_offset=244, last_timestamp_ms=1796322713391)]
    >>> parse_find_hanging("Topic\\tPartition\\tProducerId\\n")
    []
    """
    rows = []
    for line in output.splitlines()[1:]:
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) < 7 or not fields[0]:
            continue
        topic, *numbers = fields[:7]
        partition, producer_id, epoch, coordinator_epoch, start, last = map(int, numbers)
        rows.append(OpenTransaction(topic, partition, producer_id, epoch, coordinator_epoch,
                                    start, last))  # fmt: skip
    return rows


def abort_hanging_transactions(
    java_command: list[str], bootstrap_servers: str, broker_id: int, started_ms: int
) -> list[OpenTransaction]:
    """Abort every transaction ``find-hanging`` reports on ``broker_id`` that was last written
    to before ``started_ms`` (epoch ms: before this start of the node, so no client's transaction
    of this run); return those aborted. ``java_command``: a JVM with the broker's jars on its
    class path. A tool that fails is logged, not raised: the node serves anyway."""
    tool = [*java_command, TOOL, "--bootstrap-server", bootstrap_servers]
    try:
        found = _run([*tool, "find-hanging", "--broker-id", str(broker_id),
                      "--max-transaction-timeout", "0"])  # fmt: skip
    except BrokerError as exc:
        log.warning("hanging transactions not looked for: %s", exc)
        return []
    hanging = [t for t in parse_find_hanging(found) if t.last_timestamp_ms < started_ms]

    def abort(transaction: OpenTransaction) -> bool:
        try:
            _run([*tool, "abort", "--topic", transaction.topic,
                  "--partition", str(transaction.partition),
                  "--start-offset", str(transaction.start_offset)])  # fmt: skip
        except BrokerError as exc:
            log.warning("a hanging transaction not aborted: %s", exc)
            return False
        log.warning(
            "aborted a transaction the broker's last stop left hanging: %s[%d] from offset %d "
            "(producer id %d, epoch %d)",
            transaction.topic,
            transaction.partition,
            transaction.start_offset,
            transaction.producer_id,
            transaction.producer_epoch,
        )
        return True

    with ThreadPoolExecutor(max_workers=2) as pool:  # a JVM each: two cores' worth
        aborted = list(pool.map(abort, hanging))
    return [transaction for transaction, done in zip(hanging, aborted, strict=True) if done]


def _run(command: list[str]) -> str:
    result = subprocess.run(  # noqa: S603  # a fixed argv
        command, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise BrokerError(
            f"{' '.join(command[-6:])} failed ({result.returncode}): "
            f"{(result.stdout + result.stderr).strip()[-2000:]}"
        )
    return result.stdout
