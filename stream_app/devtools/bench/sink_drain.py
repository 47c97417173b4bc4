"""The sink alone draining a recorded backlog: its CPU seconds per event, by thread.

``python -m stream_app.devtools.bench.sink_drain --events 100000 --runs 4 [--old-tree DIR]``
starts a broker, trains a small model, produces a JSON backlog and lets one worker score it (the
transactions, predictions and alerts stay on their topics); then each run is a child process
that builds the sink's ingest loop (:func:`stream_app.warehouse.service.build_ingest`) on a fresh
consumer group and chDB directory and runs it in its main thread until every event and prediction
is stored. A run's CPU counts from the poll that brought the first records to the last row
stored, every thread of the process (``/proc/self/task``): the ingest loop, librdkafka's and
chDB's (inserts' pipelines, background merges). No web server: what the benchmark's visibility
poll costs the sink is not in it.

With ``--old-tree``, runs alternate between that directory (another commit's code, e.g. from
``git archive``) and this one, A B A B: both on the same backlog and broker. The child is this
file run as a script with ``PYTHONPATH`` set to the tree, so it must import only what both trees
have.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """CPU seconds of every thread of this process, summed by kind (``python``: the threads named
    like the process, ``librdkafka``, ``chdb`` for the rest).

    >>> busy = sum(i * i for i in range(200_000))
    >>> thread_cpu()["python"] > 0
    True
    """
    totals: dict[str, float] = {}
    main_name = Path("/proc/self/comm").read_text().strip()  # Python threads keep its name
    for task in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{task}/stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICKS
        kind = (
            "librdkafka" if name.startswith("rdk:") else "python" if name == main_name else "chdb"
        )
        totals[kind] = totals.get(kind, 0.0) + seconds
    return totals


def run_child(events: int) -> dict[str, Any]:
    """One sink drain in this process, settings from the environment (``STREAM_APP_*``): the
    ingest loop runs in a thread of its own, as in ``stream-app sink``."""
    from stream_app import thread_service
    from stream_app.settings import Settings
    from stream_app.warehouse import service

    settings = Settings()
    ingest = service.build_ingest(settings)
    # what ``stream-app sink`` does next, in the trees that do it
    getattr(service, "tune_garbage_collector", lambda: None)()
    getattr(thread_service, "freeze_startup_heap", lambda: 0)()  # as its ThreadService does
    collecting = [0.0, 0.0]  # the cyclic garbage collector: started at, seconds in it

    def collector(phase: str, _info: dict[str, int]) -> None:
        now = time.thread_time()
        if phase == "start":
            collecting[0] = now
        else:
            collecting[1] += now - collecting[0]

    gc.callbacks.append(collector)
    stats, topics = ingest.stats, (settings.topics.transactions, settings.topics.predictions)
    loop = threading.Thread(target=ingest.run, name="ingest-loop")
    loop.start()
    before, started = thread_cpu(), time.monotonic()
    deadline = started + 120 + events / 500
    try:
        while not stats.consumed:  # the CPU from the last look before the first records
            before, started, collecting[1] = thread_cpu(), time.monotonic(), 0.0
            time.sleep(0.002)
        while min(stats.stored.get(topic, 0) for topic in topics) < events:
            if time.monotonic() > deadline or not loop.is_alive():
                raise SystemExit(f"only {stats.stored} stored of {events} events")
            time.sleep(0.01)
        after, seconds, in_gc = thread_cpu(), time.monotonic() - started, collecting[1]
    finally:
        ingest.stop()
        loop.join()
    cpu = {kind: after[kind] - before.get(kind, 0.0) for kind in after}
    return {
        "events": events,
        "records": stats.consumed,
        "flushes": stats.flushes,
        "seconds": round(seconds, 2),
        "cpu_s": {kind: round(value, 2) for kind, value in sorted(cpu.items())},
        "us_per_event": round(sum(cpu.values()) / events * 1e6, 1),
        "gc_us_per_event": round(in_gc / events * 1e6, 1),
        "stage_us_per_event": {
            stage: round(value / events * 1e6, 1)
            for stage, value in stats.stages.snapshot().items()
        },
    }


def prepare(state_dir: Path, events: int, seed: int) -> tuple[Any, Any]:
    """The broker (started), and settings whose topics hold ``events`` transactions scored."""
    from models.train import TrainingConfig
    from stream_app.devtools.produce import ProduceOptions, produce
    from stream_app.devtools.stack import LocalStack
    from stream_app.processes import ChildProcess, get_json

    stack = LocalStack(state_dir, keep_broker_log=False)
    stack.start()
    try:
        stack.ensure_model(TrainingConfig(events=20_000, num_trees=50), print)
        settings = stack.settings(f"sinkdrain-{uuid.uuid4().hex[:6]}", 4)
        produce(settings, ProduceOptions(events=events, seed=seed, event_format="json"))
        worker = ChildProcess("worker", ["worker"], settings, state_dir / "logs")
        try:
            url = f"http://{settings.sql_host}:{worker.web_port()}/health"
            while ((get_json(url) or {}).get("scored") or 0) < events:
                worker.check_alive()
                time.sleep(0.2)
        finally:
            worker.stop()
    except BaseException:
        stack.stop()
        raise
    return stack, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--runs", type=int, default=4, help="sink drains (alternating with --old-tree)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--old-tree", type=Path, help="another tree's code for every other run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.events)))
        return
    from stream_app.processes import settings_env

    new_tree = Path(__file__).resolve().parents[3]
    trees = [args.old_tree.resolve(), new_tree] if args.old_tree else [new_tree]
    with tempfile.TemporaryDirectory(prefix="sink-drain-") as state:
        stack, settings = prepare(Path(state), args.events, args.seed)
        try:
            for run in range(args.runs):
                tree = trees[run % len(trees)]
                name = f"sinkdrain-run{run}-{uuid.uuid4().hex[:6]}"
                run_settings = settings.model_copy(
                    update={
                        "sink_group": name,
                        "warehouse_dsn": f"chdb://{state}/{name}",
                        "warehouse_database": "sinkdrain",
                    }
                )
                env = {**os.environ, **settings_env(run_settings), "PYTHONPATH": str(tree)}
                script = Path(state) / "sink_drain.py"  # outside both trees: no sys.path shadowing
                script.write_bytes(Path(__file__).read_bytes())
                child = [sys.executable, str(script), "--child", "--events", str(args.events)]
                out = subprocess.run(  # noqa: S603  # our own interpreter and script
                    child, cwd=tree, env=env, check=True, capture_output=True, text=True
                ).stdout
                result = json.loads(out.strip().splitlines()[-1])
                print(json.dumps({"run": run, "tree": str(tree), **result}), flush=True)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
