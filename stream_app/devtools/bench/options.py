"""What a benchmark run measures, and how much of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from models.train import TrainingConfig


@dataclass(frozen=True)
class LatencyOptions:
    """The paced run: offered rate, duration, warm-up dropped, visibility sampling."""

    seconds: float = 60.0  # long enough to see latency climb, if it does
    rate: float = 5_000.0
    warmup_s: float = 2.0
    sample_every: int = 50  # events per visibility sample
    poll_interval_s: float = 0.1  # warehouse visibility poll
    #: after the paced events' time, how long to wait for the last predictions and samples
    grace_s: float = 60.0


@dataclass(frozen=True)
class BenchOptions:
    events: int = 200_000  # backlog of each throughput phase (JSON, Avro, bare loop, scale)
    latency: LatencyOptions = field(default_factory=LatencyOptions)
    #: a paced run on the latency phase's own deployment just before it, reported apart: right
    #: after the throughput phases a paced run's first 20 s measured p99 398 ms (docs/benchmarks.md)
    latency_warmup_seconds: float = 20.0
    #: one worker then two, this many times: the scale figure is the median pair's ratio
    scale_pairs: int = 3
    soak_events: int = 0  # 0 = no soak phase
    state_dir: Path = Path(".stream_app/bench")  # wiped at start
    training: TrainingConfig = field(default_factory=TrainingConfig)
    #: partitions of each keyed topic, as a deployment has them: one worker reads them all, two
    #: share them
    partitions: int = 4
    #: warehouse of the bare loop, opened by the benchmark process itself (never by a child);
    #: default ``chdb://<state_dir>/bare-warehouse``
    bare_warehouse_dsn: str | None = None
    seed: int = 7

    @property
    def bare_dsn(self) -> str:
        return self.bare_warehouse_dsn or f"chdb://{self.state_dir.resolve() / 'bare-warehouse'}"
