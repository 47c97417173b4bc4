"""Assigned partitions a consumer does not read, noticed for ``/health``.

librdkafka starts fetching an assigned partition once the group coordinator has answered the
partition's committed offset (OffsetFetch). A ``read_committed`` consumer asks for stable offsets
(KIP-447): while a transaction that committed offsets for the group is open, the coordinator
answers ``UNSTABLE_OFFSET_COMMIT`` and librdkafka asks again, every second, without end. And a
``read_committed`` fetch stops at the partition's last stable offset, the first record of the
oldest open transaction. A transaction the broker never completes holds both for ever — after a
single-node broker's controlled shutdown skipped a transaction's markers, a worker sat assigned
and idle for minutes with ~700 records per partition waiting, heartbeating, nothing consumed, no
error (``docs/faults.md``, fault 9; :mod:`stream_app.kafka.hanging` aborts such transactions
when the local broker starts). Nothing in the client's API says so; its statistics
(``statistics.interval.ms``) give each partition's fetch state and offsets, and whether it is
assigned (``desired``).

A :class:`FetchWatch` reads them and reports assigned partitions still in state ``none`` or
``stopped`` (no fetcher started), and partitions whose last stable offset has not moved while
records wait past it. It does not assign partitions again: librdkafka 2.16 then starts a
partition whose stable-offset answer was still pending at ``auto.offset.reset`` instead of its
committed offset (seen: a manual ``assign`` during such a wait replayed from the beginning).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

#: how often librdkafka hands the consumer's statistics over (served by ``consume``/``poll``)
STATISTICS_INTERVAL_MS = 2000
#: fetch states of a partition whose fetcher was never started, or was stopped
NOT_FETCHING = frozenset({"none", "stopped"})

Partition = tuple[str, int]


class FetchWatch:
    """Fed by the consumer's statistics callback (in the thread that polls the consumer); read
    by ``/health`` from any thread (:attr:`unfetched` and :attr:`held` are replaced whole, never
    changed)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: assigned partitions without a fetcher → clock seconds since first seen so
        self.unfetched: dict[Partition, float] = {}
        #: assigned partitions with records past their last stable offset → (that offset,
        #: clock seconds since it has not moved)
        self.held: dict[Partition, tuple[int, float]] = {}

    def consumer_config(self) -> dict[str, Any]:
        """What a consumer's configuration needs for this watch to see its statistics."""
        return {"statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": self.on_statistics}

    def on_statistics(self, report: str) -> None:
        """librdkafka's statistics callback (JSON): note which assigned partitions have no
        fetcher, and which have records held behind an unmoving last stable offset."""
        now = self._clock()
        assigned = [
            ((topic, int(partition)), fields)
            for topic, entry in json.loads(report).get("topics", {}).items()
            for partition, fields in entry.get("partitions", {}).items()
            if fields.get("desired")
        ]
        self.unfetched = {
            partition: self.unfetched.get(partition, now)
            for partition, fields in assigned
            if fields["fetch_state"] in NOT_FETCHING
        }
        held = {}
        for partition, fields in assigned:
            stable, high = fields.get("ls_offset", -1), fields.get("hi_offset", -1)
            if 0 <= stable < high:
                last_stable, since = self.held.get(partition, (stable, now))
                held[partition] = (stable, since if last_stable == stable else now)
        self.held = held

    def reasons(self, now: float, stall_s: float) -> list[str]:
        """Why the consumer is not doing its job: partitions that waited for a fetcher, or
        behind an unmoving last stable offset, past ``stall_s``."""
        reasons = []
        unfetched, held = self.unfetched, {p: since for p, (_, since) in self.held.items()}
        if unfetched and (waited := now - min(unfetched.values())) > stall_s:
            reasons.append(
                f"partitions assigned and not fetched for {waited:.0f}s (limit {stall_s:g}s; "
                f"committed offsets held by an open transaction?): {_names(unfetched)}"
            )
        if held and (waited := now - min(held.values())) > stall_s:
            reasons.append(
                f"records held behind a last stable offset unmoved for {waited:.0f}s (limit "
                f"{stall_s:g}s; a transaction left open?): {_names(held)}"
            )
        return reasons


def _names(partitions: dict[Partition, float]) -> str:
    return ", ".join(f"{topic}:{partition}" for topic, partition in sorted(partitions))
