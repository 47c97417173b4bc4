"""End-to-end throughput: a pre-produced backlog drained by one worker into the warehouse.

events/s = N / (when the N-th prediction row is queryable minus the worker's first record). The
warehouse is polled through the sink's read-only endpoint every ~50 ms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from stream_app.devtools.bench.deployment import Deployment
from stream_app.devtools.bench.errors import BenchError
from stream_app.devtools.bench.progress import Say, Ticker
from stream_app.devtools.bench.stack import BenchStack
from stream_app.devtools.produce import EventFormat, ProduceOptions, produce

POLL_S = 0.05


@dataclass(frozen=True)
class ThroughputResult:
    event_format: str
    events: int
    started_at: float  # wall clock (epoch s) of the worker's first record
    seconds: float
    worker_stage_seconds: dict[str, float]
    sink_stage_seconds: dict[str, float]
    peak_rss_mb: dict[str, float]
    cpu_seconds: dict[str, float]  # of the worker and the sink, start-up included
    #: of the worker and the sink from the worker's first record seen (within a poll) to the end
    cpu_seconds_draining: dict[str, float]
    alerts: int  # published by the worker
    scored: int  # by the worker: more than ``events`` if it read records twice
    dead_lettered: int
    alert_ids: frozenset[str]  # event ids of the alerts stored, to compare with the bare loop's

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def measure_throughput(
    stack: BenchStack,
    event_format: EventFormat,
    events: int,
    seed: int,
    phase: str = "",
    **overrides: Any,
) -> ThroughputResult:
    """One drain; ``phase`` names it (default ``throughput-<format>``: its own topics), the
    deployment's settings with ``overrides``."""
    say = stack.say
    settings = stack.phase_settings(phase or f"throughput-{event_format}", **overrides)
    say(f"[{event_format}] producing a backlog of {events:,} events")
    sent = produce(settings, ProduceOptions(events=events, seed=seed, event_format=event_format))
    if sent.valid != events:
        raise BenchError(f"produced {sent.valid} valid events, wanted {events}")
    say(f"[{event_format}] starting the worker and the sink on the backlog")
    deployment = stack.deploy(settings, phase or f"throughput-{event_format}")
    try:
        return _drain(deployment, event_format, events, say)
    finally:
        stack.undeploy(deployment)


def _drain(deployment: Deployment, event_format: str, events: int, say: Say) -> ThroughputResult:
    first_record_at: float | None = None
    cpu_at_first_record: dict[str, float] = {}
    sink_up = sink_busy = False
    sink_baseline: dict[str, float] = {}  # the sink's idle polls before its first record
    stored = 0
    ticker = Ticker()
    deadline = time.monotonic() + 120 + events / 1000
    while True:
        deployment.check_alive()
        if first_record_at is None:
            worker = deployment.worker_health() or {}
            first_record_at = worker.get("first_record_at")
            if first_record_at is not None:
                # the worker's own reading at its first record: a small backlog may be drained
                # before this poll sees it; the sink's is this poll's
                cpu_at_first_record = {
                    **deployment.cpu_seconds(),
                    "worker": worker["first_record_cpu_s"],
                }
        if not sink_busy:
            sink = deployment.sink_health()
            if sink is not None:
                sink_up, sink_busy = True, sink["consumed"] > 0
                if not sink_busy:
                    sink_baseline = sink["stage_seconds"]
        if sink_up:
            stored = deployment.stored_predictions()
            if stored >= events and first_record_at is not None:
                done_at = time.time()
                break
        if ticker.due():
            say(_line(event_format, stored, events, first_record_at))
        if time.monotonic() > deadline:
            raise BenchError(f"[{event_format}] only {stored:,} of {events:,} rows stored in time")
        time.sleep(POLL_S)
    worker_final, sink_at_done = deployment.worker_health(), deployment.sink_health()
    if worker_final is None or sink_at_done is None:
        raise BenchError("the worker or the sink stopped answering at the end of the phase")
    sink_stages = _settled_sink_stages(deployment, events)
    sink_stages["consume"] = sink_at_done["stage_seconds"]["consume"]  # not its idle polls after
    alerts = worker_final["alerts"]
    result = ThroughputResult(
        event_format=event_format,
        events=events,
        started_at=first_record_at,
        seconds=done_at - first_record_at,
        worker_stage_seconds=worker_final["stage_seconds"],
        sink_stage_seconds=_minus(sink_stages, sink_baseline),
        peak_rss_mb=deployment.peak_rss_mb(),
        cpu_seconds=deployment.cpu_seconds(),
        cpu_seconds_draining=deployment.cpu_seconds_since(cpu_at_first_record),
        alerts=alerts,
        scored=worker_final["scored"],
        dead_lettered=worker_final["dead_lettered"],
        alert_ids=_stored_alert_ids(deployment, alerts),
    )
    say(
        f"[{event_format}] {events:,} events in {result.seconds:.2f}s: "
        f"{result.events_per_s:,.0f} events/s"
    )
    return result


def _settled_sink_stages(deployment: Deployment, events: int) -> dict[str, float]:
    """The sink's stage times once its last flush finished (its rows show before its bookkeeping).

    Settled = every prediction counted as stored and no new flush for 0.3 s (at most 5 s).
    """
    topic = deployment.settings.topics.predictions
    last_flushes, stable_since = -1, time.monotonic()
    deadline = stable_since + 5.0
    while True:
        health = deployment.sink_health() or {}
        flushes = health.get("flushes", -1)
        if flushes != last_flushes:
            last_flushes, stable_since = flushes, time.monotonic()
        stored = health.get("stored", {}).get(topic, 0)
        now = time.monotonic()
        if (stored >= events and now - stable_since >= 0.3) or now > deadline:
            return dict(health.get("stage_seconds", {}))
        time.sleep(POLL_S)


def _stored_alert_ids(deployment: Deployment, alerts: int) -> frozenset[str]:
    """Event ids of the alerts the sink stored, once it has as many as the worker published
    (at most 5 s)."""
    deadline = time.monotonic() + 5.0
    while True:
        ids = frozenset(row[0] for row in deployment.query("SELECT event_id FROM alerts_raw"))
        if len(ids) >= alerts or time.monotonic() > deadline:
            return ids
        time.sleep(POLL_S)


def _line(event_format: str, stored: int, events: int, first: float | None) -> str:
    if first is None:
        return f"[{event_format}] waiting for the worker's first record"
    rate = stored / (time.time() - first)
    return f"[{event_format}] stored {stored:,} of {events:,}, {rate:,.0f} events/s"


def _minus(totals: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) - float(baseline.get(k, 0.0)) for k, v in totals.items()}
