"""``stream-app bench guarantees``: throughput and decision latency in both processing guarantees,
alternated in one run on one broker, so that the machine's noise weighs on both alike.

Before the rounds, each arm drains a backlog of ``warmup_events`` that is not measured: on a
fresh broker the first round's drain was the slower of an arm's two in 9 of 10 (five runs, both
arms; by up to 32 %), which swung the ratio from run to run (docs/guarantees.md).
Each paced run's deployment (worker, sink, topics) is warmed first by a paced run of
``warmup_seconds``, reported apart, as in ``stream-app bench latency`` (a paced run on a broker,
worker and sink just started measures their warm-up). Each round
drains a backlog in at-least-once, then in exactly-once (:mod:`.throughput`), and runs the paced
latency phase in each (:mod:`.latency`; its checking consumer reads committed, so an exactly-once
prediction counts as arrived once its transaction is committed). The ratio is exactly-once over
at-least-once events/s, the median over the rounds of each.

``intervals_ms`` adds exactly-once arms at other commit intervals (``transaction_interval_ms``)
to every round, after the default's, each on deployments of its own: the way to compare
intervals under the same noise.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from models.train import TrainingConfig
from stream_app.devtools.bench.latency import LatencyResult, measure_paced, paced_deployment
from stream_app.devtools.bench.options import LatencyOptions
from stream_app.devtools.bench.progress import Say
from stream_app.devtools.bench.render import write_json
from stream_app.devtools.bench.report import machine, percentiles_ms
from stream_app.devtools.bench.stack import BenchStack
from stream_app.devtools.bench.throughput import measure_throughput
from stream_app.settings import ProcessingGuarantee, Settings

#: the issue's targets: exactly-once keeps this share of the throughput, and this p99 (ms)
RATIO_TARGET = 0.8
P99_TARGET_MS = 100.0


@dataclass(frozen=True)
class Arm:
    """One configuration the rounds run: a guarantee, and for exactly-once a commit interval."""

    guarantee: ProcessingGuarantee
    transaction_interval_ms: int | None = None  # None: the settings' own

    @property
    def name(self) -> str:
        """The report's key: the guarantee, with the interval when it is not the default's."""
        if self.transaction_interval_ms is None:
            return self.guarantee
        return f"{self.guarantee}_{self.transaction_interval_ms}ms"

    def use(self, stack: BenchStack) -> None:
        """Make the phases ``stack`` deploys from now on run in this arm."""
        stack.guarantee = self.guarantee
        stack.transaction_interval_ms = self.transaction_interval_ms


@dataclass(frozen=True)
class GuaranteeBenchOptions:
    events: int = 100_000  # backlog of each throughput run
    #: a median of three: two drains of one configuration differ by up to ±15 % (docs/guarantees.md)
    rounds: int = 3
    latency: LatencyOptions = field(default_factory=lambda: LatencyOptions(seconds=20.0))
    warmup_seconds: float = 20.0  # a paced run on each paced run's deployment first, apart
    partitions: int = 4
    state_dir: Path = Path(".stream_app/bench-guarantees")  # wiped at start
    seed: int = 7
    #: a smaller model than ``stream-app bench``'s: cheaper scoring makes the commits' share
    #: larger, so the ratio errs low, and the run fits a busy machine
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(events=40_000, num_trees=100)
    )
    #: exactly-once arms at these commit intervals besides the default's
    intervals_ms: tuple[int, ...] = ()
    #: a drain of this many events in each arm before the rounds, not measured (0: none)
    warmup_events: int = 20_000

    @property
    def arms(self) -> tuple[Arm, ...]:
        default = Settings().transaction_interval_ms
        extra = dict.fromkeys(i for i in self.intervals_ms if i != default)
        return (
            Arm("at_least_once"),
            Arm("exactly_once"),
            *(Arm("exactly_once", interval) for interval in extra),
        )


def run_guarantee_bench(options: GuaranteeBenchOptions, console: Console) -> dict[str, Any]:
    """Every run, alternating the arms; whatever happens, everything started is stopped."""

    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False)

    arms = options.arms
    names = [arm.name for arm in arms]
    stack = BenchStack(options.state_dir, options.partitions, say)
    rates: dict[str, list[float]] = {a: [] for a in names}
    latencies: dict[str, list[float]] = {a: [] for a in names}
    produced: dict[str, list[float]] = {a: [] for a in names}  # the part until produced
    missing = dict.fromkeys(names, 0)  # predictions not arrived when a run stopped waiting
    checkpoints: dict[str, list[dict[str, Any]]] = {a: [] for a in names}
    warm_ups: list[float] = []  # the warm-up runs' latencies, every arm's
    warm_up_rates: dict[str, float] = {}  # the unmeasured drains', for the record
    try:
        stack.start(options.training)
        if options.warmup_events:
            warm_up_rates = _warm_up(stack, arms, options, say)
        warmup = replace(options.latency, seconds=options.warmup_seconds)
        for round_ in range(options.rounds):
            for arm in arms:
                arm.use(stack)
                say(f"[round {round_ + 1}] {arm.name}")
                seed, name = options.seed + round_, f"round{round_ + 1}"
                # each round on topics, groups and a database of its own (the arm is named in
                # them too): a later round must not find an earlier one's rows stored
                run = measure_throughput(stack, "json", options.events, seed, f"throughput-{name}")
                rates[arm.name].append(run.events_per_s)
                with paced_deployment(stack, f"latency-{name}", seed + 100) as deployment:
                    warmed = measure_paced(deployment, warmup, seed + 99, say)
                    warm_ups.extend(latency for _, latency in warmed.latencies_ms)
                    paced = measure_paced(deployment, options.latency, seed + 100, say)
                latencies[arm.name].extend(latency for _, latency in paced.latencies_ms)
                produced[arm.name].extend(to_output for to_output, _ in paced.split_ms)
                missing[arm.name] += paced.predictions_missing
                checkpoints[arm.name].append(_checkpoint_share(paced, options.latency.seconds))
    finally:
        stack.close()
    median_rate = {a: statistics.median(rates[a]) for a in names}
    ratios = {
        a: round(median_rate[a] / median_rate["at_least_once"], 3)
        for a in names
        if a != "at_least_once"
    }
    p99 = percentiles_ms(latencies["exactly_once"], [50, 99])
    return {
        "command": "stream-app bench guarantees",
        "machine": machine(),
        "events": options.events,
        "rounds": options.rounds,
        "latency_rate": options.latency.rate,
        "latency_seconds": options.latency.seconds,
        "transaction_interval_ms": Settings().transaction_interval_ms,  # the environment's too
        # each paced run's deployment warmed first, its latencies kept apart: not a measurement
        "warmup_latency_ms": percentiles_ms(warm_ups, [50, 99]),
        "warmup_events": options.warmup_events,
        "warmup_events_per_s": {a: round(r) for a, r in warm_up_rates.items()},
        "events_per_s": {a: [round(r) for r in rates[a]] for a in names},
        "latency_ms": {
            a: {**percentiles_ms(latencies[a], [50, 99]), "missing": missing[a]} for a in names
        },
        # input CreateTime → the prediction's CreateTime: the rest is the wait to be read (in
        # exactly-once, for the transaction's commit)
        "latency_to_produced_ms": {a: percentiles_ms(produced[a], [50, 99]) for a in names},
        "ratio": ratios["exactly_once"],  # at the default interval; the targets judge it
        "ratio_by_arm": ratios,
        "latency_checkpoints": checkpoints,
        "targets": {
            "ratio": {
                "target": RATIO_TARGET,
                "met": median_rate["exactly_once"] >= RATIO_TARGET * median_rate["at_least_once"],
            },
            "p99_ms": {
                "target": P99_TARGET_MS,
                "met": p99.get("p99", 1e9) <= P99_TARGET_MS and not missing["exactly_once"],
            },
        },
    }


def _warm_up(
    stack: BenchStack, arms: tuple[Arm, ...], options: GuaranteeBenchOptions, say: Say
) -> dict[str, float]:
    """A drain of ``warmup_events`` in each of ``arms``, not measured; their events/s by arm."""
    rates: dict[str, float] = {}
    for arm in arms:
        arm.use(stack)
        say(f"[warm-up] {arm.name}: a drain of {options.warmup_events:,} events, not measured")
        run = measure_throughput(
            stack, "json", options.warmup_events, options.seed - 1, "throughput-warmup"
        )
        rates[arm.name] = run.events_per_s
    return rates


def _checkpoint_share(paced: LatencyResult, seconds: float) -> dict[str, Any]:
    """What the worker's checkpoints (in exactly-once, its commits) took of a paced run: per
    batch, and as a share of the run's wall time (warm-up included, so a slight overstatement);
    in exactly-once, per transaction: each part of the commit and the changelog records, and
    how many transactions each part took longer than 50 ms in."""
    spent = paced.worker_stage_seconds.get("checkpoint", 0.0)
    share: dict[str, Any] = {
        "mean_batch_events": round(paced.worker_scored / max(paced.worker_batches, 1), 1),
        "checkpoint_ms_per_batch": round(1000 * spent / max(paced.worker_batches, 1), 2),
        "checkpoint_share_of_run": round(spent / seconds, 3),
    }
    if transactions := paced.worker_transactions:
        share["transactions"] = transactions
        share["ms_per_transaction"] = {
            part: round(1000 * part_s / transactions, 2)
            for part, part_s in paced.worker_transaction_seconds.items()
        }
        share["state_records_per_transaction"] = round(paced.worker_state_records / transactions)
        share["transactions_over_50ms"] = paced.worker_transaction_laps_over_50ms  # per part
    return share


def guarantee_table(report: dict[str, Any]) -> Table:
    table = Table(
        "arm",
        "events/s (each round)",
        "latency p50 / p99 / max ms",
        "checkpoint ms per batch (share of the run)",
        "ms per transaction by part · state records",
        title=f"stream-app bench guarantees: exactly-once / at-least-once = {report['ratio']:.2f}x "
        f"(target ≥ {RATIO_TARGET}x, met: {report['targets']['ratio']['met']}); "
        f"p99 target ≤ {P99_TARGET_MS:g} ms met: {report['targets']['p99_ms']['met']}",
        title_justify="left",
    )
    for arm, rates in report["events_per_s"].items():
        latency = report["latency_ms"][arm]
        table.add_row(
            arm,
            ", ".join(f"{r:,}" for r in rates),
            f"{latency.get('p50')} / {latency.get('p99')} / {latency.get('max')}",
            ", ".join(
                f"{c['checkpoint_ms_per_batch']} ({c['checkpoint_share_of_run']:.0%})"
                for c in report["latency_checkpoints"][arm]
            ),
            "; ".join(
                " ".join(f"{part} {ms}" for part, ms in c["ms_per_transaction"].items())
                + f" · {c['state_records_per_transaction']}"
                for c in report["latency_checkpoints"][arm]
                if "transactions" in c
            ),
        )
    return table


def guarantee_command(
    options: GuaranteeBenchOptions, json_path: Path | None, console: Console
) -> dict[str, Any]:
    """``stream-app bench guarantees``: run, print the table, write the JSON document."""
    report = run_guarantee_bench(options, console)
    console.print(guarantee_table(report))
    write_json(report, json_path, console)
    return report
