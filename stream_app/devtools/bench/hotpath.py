"""``stream-app bench hotpath``: the worker's CPU per event, stage by stage, without Kafka.

The worker's own per-batch work (the scoring pipeline and its batch observers, built from the
settings as the worker builds them) over synthetic JSON records in memory, at several batch
sizes: at 5,000 events/s a worker that keeps up takes small batches, where each stage's fixed
cost per batch weighs most. Stages are timed in the scoring thread's CPU time
(``time.thread_time``), ``total`` is the process's CPU and ``other_threads`` the rest of it (the
explainer thread's TreeSHAP of the alerting rows, mostly), so other load on a shared machine
leaves the figures mostly alone. Consume, produce and checkpoint are the broker's side:
``stream-app bench --profile`` measures them.
"""

from __future__ import annotations

import itertools
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from models.loader import load_model
from models.registry import FileModelStore
from stream_app.codecs.factory import schema_registry
from stream_app.codecs.json import JsonCodec
from stream_app.control.modelset import ModelSet
from stream_app.devtools.bench.render import write_json
from stream_app.devtools.generator import TransactionGenerator
from stream_app.scoring.build import build_pipeline, drift_observer
from stream_app.scoring.observers import BatchObserver, Observers
from stream_app.settings import Settings
from stream_app.timing import StageTimes


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """A consumed record held in memory (the ``InputRecord`` protocol)."""

    _value: bytes
    _key: bytes
    _partition: int
    _offset: int
    _create_time: int

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return self._key

    def topic(self) -> str:
        return "transactions"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._create_time)


def memory_records(events: int, partitions: int, seed: int) -> list[MemoryRecord]:
    """Synthetic JSON records keyed by card, each in its card's partition, created now."""
    codec, now, offsets = JsonCodec(), int(time.time() * 1000), [0] * partitions
    records = []
    for generated in itertools.islice(TransactionGenerator(seed=seed, time_scale=600), events):
        event = generated.event
        key = event.card_id.encode()
        partition = zlib.crc32(key) % partitions
        records.append(MemoryRecord(codec.encode(event), key, partition, offsets[partition], now))
        offsets[partition] += 1
    return records


def measure_hotpath(
    settings: Settings, records: list[MemoryRecord], batch_size: int
) -> dict[str, float]:
    """CPU µs per event by stage (scoring thread) and ``total`` (process), over ``records`` in
    batches of ``batch_size``, through a fresh pipeline (empty card state) on the registry's
    champion."""
    registry = schema_registry(settings)
    store = FileModelStore(settings.model_dir)
    models = ModelSet(load_model(store))
    pipeline = build_pipeline(settings, registry)
    observed: list[BatchObserver] = []
    if settings.drift_monitoring:  # the steady cost: the score monitors read every row
        steady = settings.model_copy(update={"drift_score_warmup_s": 0.0})
        observed.append(drift_observer(steady, registry, store, pipeline))
    observers = Observers(observed)
    times = StageTimes(clock=time.thread_time)
    cpu = time.process_time()
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]  # the last one is freed here, untimed
        times.start()
        scored = pipeline.process(batch, models, times)
        if scored.events is not None:
            observers.observe(scored.events)
        times.lap("observe")
    times.start()
    observers.flush()  # what the drift observer still holds (the worker's next checkpoint)
    times.lap("observe")
    cpu = time.process_time() - cpu
    pipeline.alerts.close()
    per_event = {stage: 1e6 * s / len(records) for stage, s in times.snapshot().items()}
    total = 1e6 * cpu / len(records)
    return {
        **per_event,
        "other_threads": total - sum(per_event.values()),  # the explainer's TreeSHAP mostly
        "total": total,
        "alerts_fired": pipeline.alerts.fired,
    }


def hotpath_command(
    settings: Settings,
    model_dirs: list[Path],
    events: int,
    batch_sizes: list[int],
    json_path: Path | None,
    console: Console,
) -> None:
    """Measure each model directory's champion at each batch size, print a table, write JSON."""
    records = memory_records(events, partitions=4, seed=7)
    results: dict[str, dict[str, Any]] = {}
    for model_dir in model_dirs:
        for size in batch_sizes:
            run = settings.model_copy(update={"model_dir": model_dir})
            results[f"{model_dir} @ {size}"] = measure_hotpath(run, records, size)
    stages = list(dict.fromkeys(s for r in results.values() for s in r if s != "alerts_fired"))
    table = Table(
        "model dir @ batch", *stages, "alerts fired", title=f"CPU µs per event ({events:,})"
    )
    for name, figures in results.items():
        table.add_row(
            name,
            *(f"{figures.get(s, 0.0):.1f}" for s in stages),
            str(int(figures["alerts_fired"])),
        )
    console.print(table)
    write_json({"events": events, "results": results}, json_path, console)
