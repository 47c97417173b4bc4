"""Decision latency and warehouse visibility, under a paced load on an idle worker and sink.

Latency: a checking consumer's arrival time of each prediction minus its input's CreateTime, and
its part until the worker produced the prediction (the prediction's own CreateTime).
Visibility: one event in ``sample_every`` is looked up in the warehouse every poll interval.
The first ``warmup_s`` seconds of input are dropped from both.
A run that has not seen every prediction and every sample ``grace_s`` after its last event stops
waiting and reports what it has, with how many it missed.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from stream_app.devtools.bench.checker import ArrivalChecker
from stream_app.devtools.bench.deployment import Deployment
from stream_app.devtools.bench.errors import BenchError
from stream_app.devtools.bench.options import LatencyOptions
from stream_app.devtools.bench.paced import PacedProducer
from stream_app.devtools.bench.progress import Say, Ticker
from stream_app.devtools.bench.stack import BenchStack
from stream_app.devtools.bench.visibility import VisibilityPoller
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.processes import wait_until

WARM_UP_EVENTS = 200


@dataclass(frozen=True)
class LatencyResult:
    offered_rate: float  # events per second actually sent
    started_ms: float  # wall clock of the first paced event
    latencies_ms: list[tuple[float, float]]  # (input CreateTime, latency), warm-up dropped
    #: each latency in two: (input CreateTime → the prediction's CreateTime, the rest)
    split_ms: list[tuple[float, float]]
    visibility_ms: list[tuple[float, float]]  # (input CreateTime, visibility), warm-up dropped
    alert_latencies_ms: list[tuple[float, float]]  # (input CreateTime, latency), warm-up dropped
    poll_interval_ms: float
    peak_rss_mb: dict[str, float]
    cpu_seconds: dict[str, float]  # of the worker and the sink, start-up included
    #: of the worker and the sink from the first paced event until the run stopped waiting
    paced_cpu_seconds: dict[str, float]
    #: the same by thread name (of the threads alive at the end)
    paced_thread_cpu_seconds: dict[str, dict[str, float]]
    sent: int  # paced events
    worker_scored: int  # warm-up events included
    worker_batches: int  # warm-up included
    worker_stage_seconds: dict[str, float]
    #: exactly-once: transactions committed, seconds per part of a commit, changelog records
    worker_transactions: int
    worker_transaction_seconds: dict[str, float]
    worker_transaction_laps_over_50ms: dict[str, int]  # the tail of each part of a commit
    worker_state_records: int
    predictions_missing: int  # sent, not arrived when the run stopped waiting
    visibility_timed_out: int  # samples not visible when the run stopped waiting


@dataclass(frozen=True)
class Shortfall:
    """What a run had not seen when it stopped waiting."""

    predictions: int = 0
    samples: int = 0


@contextmanager
def paced_deployment(stack: BenchStack, phase: str, seed: int) -> Iterator[Deployment]:
    """A worker and a sink on ``phase``'s own topics, groups and database, ready and warm (a few
    events stored first: both assigned, chDB's first insert done), for paced runs one after the
    other; stopped on leaving."""
    deployment = stack.deploy(stack.phase_settings(phase), phase)
    try:
        deployment.wait_ready()
        produce(deployment.settings, ProduceOptions(events=WARM_UP_EVENTS, seed=seed + 1000))
        wait_until(
            lambda: deployment.stored_predictions() >= WARM_UP_EVENTS, 60, "warm-up events stored"
        )
        yield deployment
    finally:
        stack.undeploy(deployment)


def measure_paced(
    deployment: Deployment, options: LatencyOptions, seed: int, say: Say
) -> LatencyResult:
    """One paced run on ``deployment``: what it measured of the records sent from its start (the
    checking consumers start at the topics' ends), the worker's counters as their increase."""
    settings = deployment.settings
    checker = ArrivalChecker(settings, "predictions", options.sample_every)
    alerts = ArrivalChecker(settings, "alerts", None)
    producer = PacedProducer(settings, options.rate, int(options.rate * options.seconds), seed)
    worker_before = deployment.worker_health() or {}
    try:
        checker.start()
        alerts.start()
        checker.assigned.wait(10)
        alerts.assigned.wait(10)
        say(f"[latency] offering {options.rate:,.0f} events/s for {options.seconds:g}s")
        started_ms = time.time() * 1000
        cpu_before = deployment.cpu_seconds()
        threads_before = deployment.thread_cpu_seconds()
        with _heap_frozen():
            producer.start()
            poller = VisibilityPoller(deployment)
            shortfall = _run(deployment, checker, producer, poller, options, say)
        worker = _increase(deployment.worker_health() or {}, worker_before)
        peak, cpu = deployment.peak_rss_mb(), deployment.cpu_seconds()
        paced_cpu = deployment.cpu_seconds_since(cpu_before)
        paced_threads = _since(deployment.thread_cpu_seconds(), threads_before)
    finally:
        producer.stop()
        checker.stop()
        alerts.stop()
        producer.join(30)
        checker.join(30)
        alerts.join(30)
    since_ms = started_ms + options.warmup_s * 1000
    predictions = checker.latencies(since_ms)
    return LatencyResult(
        offered_rate=producer.sent / producer.seconds if producer.seconds else 0.0,
        started_ms=started_ms,
        latencies_ms=[(created, whole) for created, whole, _ in predictions],
        split_ms=[(to_output, whole - to_output) for _, whole, to_output in predictions],
        visibility_ms=poller.visibilities(since_ms),
        alert_latencies_ms=[(created, whole) for created, whole, _ in alerts.latencies(since_ms)],
        poll_interval_ms=options.poll_interval_s * 1000,
        peak_rss_mb=peak,
        cpu_seconds=cpu,
        paced_cpu_seconds=paced_cpu,
        paced_thread_cpu_seconds=paced_threads,
        sent=producer.sent,
        worker_scored=worker.get("scored", 0),
        worker_batches=worker.get("batches", 0),
        worker_stage_seconds=worker.get("stage_seconds", {}),
        worker_transactions=worker.get("transactions", 0),
        worker_transaction_seconds=worker.get("transaction_seconds", {}),
        worker_transaction_laps_over_50ms=worker.get("transaction_laps_over_50ms", {}),
        worker_state_records=worker.get("transaction_state_records", 0),
        predictions_missing=shortfall.predictions,
        visibility_timed_out=shortfall.samples,
    )


def _increase(after: Any, before: Any) -> Any:
    """The worker's counters in ``after`` (numbers, or dicts of them, as its ``/health`` gives
    them) less those in ``before``: what one run of several on the same worker added.

    >>> _increase({"scored": 30, "stage_seconds": {"features": 2.5}, "status": "ok"},
    ...           {"scored": 10, "stage_seconds": {"features": 1.0}})
    {'scored': 20, 'stage_seconds': {'features': 1.5}, 'status': 'ok'}
    """
    if isinstance(after, dict):
        earlier = before if isinstance(before, dict) else {}
        return {key: _increase(value, earlier.get(key)) for key, value in after.items()}
    if isinstance(after, int | float) and not isinstance(after, bool):
        return after - before if isinstance(before, int | float) else after
    return after


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """The benchmark's own heap (its model training, imports, earlier phases) frozen out of the
    cyclic collector for the paced run: a full collection holds the GIL, so in this process it
    stalls the checking consumers, whose stamps then add the stall to the latency they measure.
    Seen with ``gc.callbacks``: this process's full collections took 58-121 ms, one of them
    inside a paced run; frozen, none came between a paced run's start and its end."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _since(
    now: dict[str, dict[str, float]], before: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Per process, each thread name's CPU seconds in ``now`` minus those in ``before``."""
    return {
        process: {
            name: round(seconds - before.get(process, {}).get(name, 0.0), 3)
            for name, seconds in threads.items()
        }
        for process, threads in now.items()
    }


def _run(
    deployment: Deployment,
    checker: ArrivalChecker,
    producer: PacedProducer,
    poller: VisibilityPoller,
    options: LatencyOptions,
    say: Say,
) -> Shortfall:
    """Poll the warehouse every interval until every prediction arrived and every sample showed,
    or until ``grace_s`` after the paced events' time: what was still missing then."""
    ticker = Ticker()
    deadline = time.monotonic() + options.seconds + options.grace_s
    next_poll = time.monotonic()
    while True:
        deployment.check_alive()
        for thread in (producer, checker):
            if thread.failure is not None:
                raise BenchError(f"{thread.name} failed: {thread.failure}") from thread.failure
        while not checker.samples.empty():
            poller.add(*checker.samples.get())
        poller.poll()
        arrived = len(checker.arrivals)
        if producer.finished.is_set() and arrived >= producer.sent and not poller.pending:
            return Shortfall()
        if ticker.due():
            say(
                f"[latency] sent {producer.sent:,}, predictions arrived {arrived:,}, "
                f"samples visible {len(poller.visible):,}"
            )
        if time.monotonic() > deadline:
            say(
                f"[latency] stopped waiting: {arrived:,} of {producer.sent:,} predictions "
                f"arrived, {len(poller.pending):,} samples not visible in time"
            )
            return Shortfall(max(producer.sent - arrived, 0), len(poller.pending))
        next_poll += options.poll_interval_s
        time.sleep(max(0.0, next_poll - time.monotonic()))
