"""A long run: the worker's resident memory when processing starts and when it ends."""

from __future__ import annotations

import threading
import time

from stream_app.bench.errors import BenchError
from stream_app.bench.procstat import status_mb
from stream_app.bench.progress import Ticker
from stream_app.bench.stack import BenchStack
from stream_app.produce import ProduceOptions, produce


def measure_soak(stack: BenchStack, events: int, seed: int) -> dict[str, float]:
    """``VmRSS`` of the worker at its first record and after ``events`` scored, in MB."""
    settings = stack.phase_settings("soak")
    deployment = stack.deploy(settings, "soak")
    failures: list[BaseException] = []

    def send() -> None:
        try:
            produce(settings, ProduceOptions(events=events, seed=seed + 2000))
        except BaseException as exc:
            failures.append(exc)

    try:
        deployment.wait_ready()
        stack.say(f"[soak] streaming {events:,} events through one worker")
        threading.Thread(target=send, name="bench-soak-producer", daemon=True).start()
        started = time.monotonic()
        rss_start: float | None = None
        scored, ticker = 0, Ticker(every_s=5.0)
        while scored < events:
            deployment.check_alive()
            if failures:
                raise BenchError(f"[soak] producer failed: {failures[0]}")
            health = deployment.worker_health() or {}
            scored = int(health.get("scored", 0))
            if rss_start is None and health.get("first_record_at"):
                rss_start = status_mb(deployment.worker.pid, "VmRSS")
            if ticker.due():
                stack.say(f"[soak] scored {scored:,} of {events:,}")
            if time.monotonic() - started > 120 + events / 1000:
                raise BenchError(f"[soak] only {scored:,} of {events:,} scored in time")
            time.sleep(0.05 if rss_start is None else 0.5)
        rss_end = status_mb(deployment.worker.pid, "VmRSS")
        seconds = time.monotonic() - started
    finally:
        stack.undeploy(deployment)
    if rss_start is None:
        raise BenchError("[soak] the worker never reported its first record")
    stack.say(f"[soak] worker RSS {rss_start:,.0f} MB at the start, {rss_end:,.0f} MB at the end")
    return {"events": events, "seconds": seconds, "rss_mb_start": rss_start, "rss_mb_end": rss_end}
