"""Scale-out: the same backlog through one worker, then through two workers in one group, in
pairs (one, two, one, two, ...): the ratio reported is the median pair's.

Each run has topics, a group and a database of its own. The backlog is generated and encoded
first, in memory; the workers (and the sink) start and wait until they hold every partition
between them; then the backlog is sent as fast as the client takes it, and drained. The workers'
CPU seconds are read from ``/proc`` when they are ready and when the N-th prediction row is
queryable, so start-up is left out. (Generating events is slower than scoring them: produced on
the fly, the backlog would reach the workers in small batches, which cost more per event.)

On a machine with two cores, two workers cannot drain twice as fast (they share the cores with the
sink, the broker and the producer); CPU seconds per event is the figure that says whether a second
worker costs extra work per event. One pair's ratio moved between 0.91 and 1.26 over fifteen full
benchmarks on unchanged scale-out code (docs/benchmarks/history.json) while the host's speed
changed within minutes; interleaved pairs and their median keep one slow minute from making the
figure.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from stream_app.devtools.bench.errors import BenchError
from stream_app.devtools.bench.stack import BenchStack
from stream_app.devtools.produce import (
    ProduceOptions,
    ProduceReport,
    Record,
    encoded_records,
    send,
)
from stream_app.processes import wait_until


@dataclass(frozen=True)
class ScaleRun:
    workers: int
    events: int
    seconds: float  # the workers' first record to the N-th prediction row queryable
    cpu_seconds: float  # of the workers together, from ready to the N-th row queryable
    scored: int  # by the workers together: more than ``events`` if a record was read twice
    stored_rows: int  # rows in ``predictions_raw``, copies included
    distinct_events: int  # distinct event ids among them

    @property
    def cpu_s_per_million(self) -> float:
        return self.cpu_seconds / self.events * 1e6

    @property
    def scored_once(self) -> bool:
        """Every event scored, by one worker, once, and stored once."""
        return self.scored == self.stored_rows == self.distinct_events == self.events


@dataclass(frozen=True)
class ScalePair:
    one: ScaleRun
    two: ScaleRun

    @property
    def cpu_ratio(self) -> float:
        """CPU per event with two workers ÷ with one."""
        return self.two.cpu_s_per_million / self.one.cpu_s_per_million


@dataclass(frozen=True)
class ScaleResult:
    pairs: list[ScalePair]  # in the order they ran

    @property
    def cpu_ratio(self) -> float:
        """The median of the pairs' ratios."""
        return statistics.median(pair.cpu_ratio for pair in self.pairs)

    @property
    def median_pair(self) -> ScalePair:
        """The pair whose ratio is the median (of an even number, the lower middle one).

        >>> run = lambda cpu: ScaleRun(1, 1_000, 1.0, cpu, 1_000, 1_000, 1_000)
        >>> result = ScaleResult([ScalePair(run(1.0), run(r)) for r in (1.3, 0.9, 1.0)])
        >>> result.median_pair.cpu_ratio, result.cpu_ratio
        (1.0, 1.0)
        >>> even = ScaleResult(result.pairs[:2])
        >>> even.median_pair.cpu_ratio, round(even.cpu_ratio, 3)
        (0.9, 1.1)
        """
        ranked = sorted(self.pairs, key=lambda pair: pair.cpu_ratio)
        return ranked[(len(ranked) - 1) // 2]

    @property
    def scored_once(self) -> bool:
        return all(pair.one.scored_once and pair.two.scored_once for pair in self.pairs)


def measure_scale(stack: BenchStack, events: int, seed: int, pairs: int) -> ScaleResult:
    """The same backlog (JSON) through one worker, then two, ``pairs`` times."""
    made = ProduceReport()
    options = ProduceOptions(events=events, seed=seed)
    backlog = list(encoded_records(stack.phase_settings("scale-0-1"), options, made))
    if made.valid != events:
        raise BenchError(f"generated {made.valid} valid events, wanted {events}")
    return ScaleResult(
        [
            ScalePair(
                _run(stack, f"scale-{n}-1", 1, backlog), _run(stack, f"scale-{n}-2", 2, backlog)
            )
            for n in range(pairs)
        ]
    )


def _run(stack: BenchStack, phase: str, workers: int, backlog: list[Record]) -> ScaleRun:
    events, settings = len(backlog), stack.phase_settings(phase)
    deployment = stack.deploy(settings, phase, workers)
    try:
        deployment.wait_ready()
        cpu_at_ready = deployment.workers_cpu_seconds()
        stack.say(f"[scale] {workers} worker(s) ready; sending a backlog of {events:,} events")
        # the backlog was made for the first run's topic: each run sends it to its own
        send(settings, ((settings.topics.transactions, key, value) for _, key, value in backlog))

        def drained() -> bool:
            deployment.check_alive()
            return deployment.stored_predictions() >= events

        wait_until(drained, 120 + events / 1000, f"{events:,} predictions stored", 0.05)
        done_at = time.time()
        cpu = deployment.workers_cpu_seconds() - cpu_at_ready
        health = [h for h in deployment.workers_health() if h is not None]
        if len(health) != workers:
            raise BenchError("a worker stopped answering at the end of the scale phase")
        rows, distinct = deployment.query(
            "SELECT count(), uniqExact(event_id) FROM predictions_raw"
        )[0]
    finally:
        stack.undeploy(deployment)
    run = ScaleRun(
        workers=workers,
        events=events,
        seconds=done_at - min(h["first_record_at"] for h in health if h["first_record_at"]),
        cpu_seconds=cpu,
        scored=sum(h["scored"] for h in health),
        stored_rows=int(rows),
        distinct_events=int(distinct),
    )
    stack.say(
        f"[scale] {workers} worker(s): {events:,} events in {run.seconds:.2f}s, "
        f"{run.cpu_s_per_million:.1f} CPU-s per million events"
    )
    return run
