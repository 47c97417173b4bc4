"""A long run: the worker's resident memory when processing starts, along the way, and at the end.

Both the resident set (``VmRSS``) and its anonymous part (``RssAnon``: heap and stacks) are
sampled: the rest of the resident set is mapped files, shared libraries mostly, and how much of
them is resident depends on the page cache (a fresh install maps more), not on the worker.

The per-card state legitimately holds 24 hours of event time, so the events' time scale is set
for the run to span ``EVENT_TIME_DAYS`` days of event time: the windows fill in the first quarter,
and what the memory does after that is what a leak would show.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from stream_app.devtools.bench.errors import BenchError
from stream_app.devtools.bench.procstat import status_mb
from stream_app.devtools.bench.progress import Ticker
from stream_app.devtools.bench.stack import BenchStack
from stream_app.devtools.produce import UNPACED_NOMINAL_RATE, ProduceOptions, produce

EVENT_TIME_DAYS = 4


@dataclass(frozen=True)
class SoakResult:
    events: int
    seconds: float
    rss_mb_start: float
    rss_mb_end: float
    rss_mb_series: list[tuple[int, float]]  # (events scored, VmRSS MB) every 5 s
    anon_mb_start: float
    anon_mb_end: float
    anon_mb_series: list[tuple[int, float]]  # (events scored, RssAnon MB), same samples


def measure_soak(stack: BenchStack, events: int, seed: int) -> SoakResult:
    """Worker ``VmRSS`` and ``RssAnon`` in MB at its first record, every 5 s, and after
    ``events`` scored."""
    settings = stack.phase_settings("soak")
    scale = EVENT_TIME_DAYS * 86_400 * UNPACED_NOMINAL_RATE / events  # the run spans the days
    deployment = stack.deploy(settings, "soak")
    failures: list[BaseException] = []

    def send() -> None:
        try:
            produce(settings, ProduceOptions(events=events, seed=seed + 2000, time_scale=scale))
        except BaseException as exc:
            failures.append(exc)

    try:
        deployment.wait_ready()
        stack.say(f"[soak] streaming {events:,} events through one worker")
        threading.Thread(target=send, name="bench-soak-producer", daemon=True).start()
        started = time.monotonic()
        start: tuple[float, float] | None = None  # (VmRSS, RssAnon) at the first record
        scored, ticker = 0, Ticker(every_s=5.0)
        series: list[tuple[int, float]] = []  # (events scored, VmRSS MB)
        anon_series: list[tuple[int, float]] = []  # (events scored, RssAnon MB)
        pid = deployment.worker.pid
        while scored < events:
            deployment.check_alive()
            if failures:
                raise BenchError(f"[soak] producer failed: {failures[0]}")
            health = deployment.worker_health() or {}
            scored = int(health.get("scored", 0))
            if start is None and health.get("first_record_at"):
                start = status_mb(pid, "VmRSS"), status_mb(pid, "RssAnon")
            if ticker.due():
                rss, anon = status_mb(pid, "VmRSS"), status_mb(pid, "RssAnon")
                series.append((scored, round(rss, 1)))
                anon_series.append((scored, round(anon, 1)))
                stack.say(
                    f"[soak] scored {scored:,} of {events:,}, worker RSS {rss:,.0f} MB "
                    f"(anonymous {anon:,.0f})"
                )
            if time.monotonic() - started > 120 + events / 1000:
                raise BenchError(f"[soak] only {scored:,} of {events:,} scored in time")
            time.sleep(0.05 if start is None else 0.5)
        end = status_mb(pid, "VmRSS"), status_mb(pid, "RssAnon")
        seconds = time.monotonic() - started
    finally:
        stack.undeploy(deployment)
    if start is None:
        raise BenchError("[soak] the worker never reported its first record")
    stack.say(
        f"[soak] worker RSS {start[0]:,.0f} MB at the start, {end[0]:,.0f} MB at the end "
        f"(anonymous {start[1]:,.0f} → {end[1]:,.0f} MB)"
    )
    return SoakResult(events, seconds, start[0], end[0], series, start[1], end[1], anon_series)
