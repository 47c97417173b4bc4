"""The ``stream-app`` command line."""

from __future__ import annotations

import json
import logging
import sys
import time
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.markup import escape

from stream_app.cli_models import models_app
from stream_app.errors import StreamAppError
from stream_app.logs import setup_logging
from stream_app.priority import cpu_priority, lower_cpu_priority
from stream_app.settings import Settings, invalid_settings

app = typer.Typer(
    help="Streaming fraud scoring on Kafka, LightGBM and ClickHouse.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
console = Console(stderr=True)


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@app.callback()
def _root(
    log_level: Annotated[
        LogLevel, typer.Option(help="Logging level.", case_sensitive=False)
    ] = LogLevel.WARNING,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="One JSON object per log line (`log_json`).")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log at debug level (a line per batch).")
    ] = False,
) -> None:
    setup_logging("DEBUG" if verbose else log_level.upper(), log_json or Settings().log_json)


def _json_path(path: Path | None) -> Path | None:
    """``--json``'s file: its directory must exist now, not at the end of a long run."""
    if path is not None and not path.parent.is_dir():
        raise typer.BadParameter(f"no directory {path.parent}")
    return path


JsonOut = Annotated[
    Path | None,
    typer.Option("--json", help="Write the results as JSON to this file.", callback=_json_path),
]


@app.command()
def worker() -> None:
    """Run a scoring worker (faust-streaming app with a batched confluent-kafka hot path)."""
    from stream_app.scoring.worker import run_worker

    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    run_worker(Settings())


@app.command()
def sink() -> None:
    """Run the warehouse sink: the only writer of ClickHouse; serves read-only SQL with chDB."""
    settings = Settings()
    lower_cpu_priority(settings.sink_nice)  # before chDB's import starts a dozen threads
    from stream_app.warehouse.service import run_sink

    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    run_sink(settings)


@app.command()
def learner() -> None:
    """Run the online learner: a River classifier learning from labels, scoring in shadow."""
    from stream_app.online.service import run_learner

    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    run_learner(Settings())


@app.command("settings")
def show_settings(
    markdown: Annotated[
        bool, typer.Option(help="Print docs/settings.md, generated from the settings' docstrings.")
    ] = False,
) -> None:
    """Print the settings in effect (environment and STREAM_APP_CONFIG file applied)."""
    from stream_app.settings_doc import current_values, settings_markdown

    if markdown:
        typer.echo(settings_markdown(), nl=False)
        return
    for dotted, value in current_values(Settings()):
        typer.echo(f"{dotted} = {value}")


@app.command()
def topics() -> None:
    """Create the project's topics if they are missing."""
    from stream_app.kafka.topics import ensure_topics

    created = ensure_topics(Settings())
    console.print(f"created: {', '.join(created)}" if created else "all topics exist")


@app.command()
def broker(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Loopback port (0 = a free one).")
    ] = 9092,
    state_dir: Annotated[
        Path, typer.Option(help="Where the broker keeps its log; a restart finds it again.")
    ] = Path(".stream_app/broker"),
) -> None:
    """Run the local broker, Apache Kafka (KRaft, one node), until Ctrl-C."""
    import signal

    from stream_app.kafka.kafka_jars import KAFKA_VERSION
    from stream_app.kafka.local_broker import LocalBroker

    with LocalBroker.for_settings(Settings(), state_dir, port or None) as running:
        console.print(
            f"Apache Kafka {KAFKA_VERSION} listening on {running.bootstrap_servers}; "
            f"log in {running.state_dir} (Ctrl-C stops it)"
        )
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # sigtimedwait needs them blocked
        while signal.sigtimedwait(stop_signals, 1.0) is None:
            if not running.running:  # the broker died: say so, and let a supervisor see it
                console.print(f"[red]the broker exited; its log: {running.log_file}[/red]")
                raise typer.Exit(1)


def _check_drift(scenario: str) -> str:
    from stream_app.devtools.generator import drift_schedule

    try:
        drift_schedule(scenario, 1)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    return scenario


DriftOption = Annotated[
    str,
    typer.Option(
        callback=_check_drift,
        help="Drift scenario: none, new-pattern, pattern-disappears, pattern-moves, "
        "covariate-shift, or a TOML file (docs/synthetic-data.md).",
    ),
]


@app.command()
def produce(
    events: Annotated[int, typer.Option(min=1, help="How many records to send.")] = 10_000,
    rate: Annotated[
        float, typer.Option(min=0, help="Events per second; 0 = as fast as possible.")
    ] = 0.0,
    fraud_rate: Annotated[float, typer.Option(min=0, max=0.49, help="Share of fraud.")] = 0.01,
    seed: Annotated[int, typer.Option(help="Generator seed (same seed, same events).")] = 42,
    bad_fraction: Annotated[
        float, typer.Option(min=0, max=1, help="Share of malformed records.")
    ] = 0.0,
    time_scale: Annotated[
        float, typer.Option(min=0.001, help="Event seconds per wall second.")
    ] = 60.0,
    event_format: Annotated[str, typer.Option("--format", help="json or avro.")] = "json",
    labels: Annotated[
        bool, typer.Option(help="Chargeback labels to the labels topic (docs/labels.md).")
    ] = False,
    truth: Annotated[
        Path | None, typer.Option(help="Write the fraud event ids here (label-feedback).")
    ] = None,
    drift: DriftOption = "none",
    population_seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the cards and terminals (default: --seed's own); `models train` "
            "trains on seed 1's: give 1 to stream the customers the default champion knows."
        ),
    ] = None,
) -> None:
    """Produce synthetic card transactions, keyed by card id."""
    from stream_app.devtools.produce import EventFormat, ProduceOptions, ProduceReport
    from stream_app.devtools.produce import produce as run_produce
    from stream_app.kafka.topics import check_topics

    formats: dict[str, EventFormat] = {"json": "json", "avro": "avro"}
    if event_format not in formats:
        raise typer.BadParameter("--format must be json or avro")
    if truth is not None and not truth.parent.is_dir():  # it is written once all are sent
        raise typer.BadParameter(f"--truth: no directory {truth.parent}")
    settings = Settings()
    needed = (settings.topics.transactions, *((settings.topics.labels,) if labels else ()))
    check_topics(settings, needed)  # a clear error within 30 s when no broker answers

    def show(report: ProduceReport) -> None:
        sent = report.valid + report.malformed
        rate_now = sent / report.seconds if report.seconds else 0.0
        console.print(
            f"\rproduced {sent:,} ({report.malformed:,} malformed) {rate_now:,.0f}/s", end=""
        )

    options = ProduceOptions(
        events, rate, fraud_rate, seed, bad_fraction, time_scale, formats[event_format], labels,
        truth_file=truth, drift=drift, population_seed=population_seed,
    )  # fmt: skip
    report = run_produce(settings, options, show)
    console.print(
        f"\nsent {report.valid:,} valid ({report.fraud:,} fraud) and {report.malformed:,} malformed"
        + (f", {report.labels:,} labels" if labels else "")
    )
    for point in report.drift:
        console.print(
            f"drift at event {point.index:,} (event time {point.event_time}): {point.name}"
        )


@app.command("label-feedback")
def label_feedback(
    truth: Annotated[
        Path,
        typer.Option(
            help="The fraud event ids `produce --truth` wrote.", exists=True, dir_okay=False
        ),
    ],
    per_day: Annotated[int, typer.Option(min=1, help="Alerts checked per day.")] = 100,
    idle_exit: Annotated[
        float, typer.Option(min=0, help="Exit after this many seconds without a label; 0: never.")
    ] = 0.0,
) -> None:
    """Investigators' verdicts on alerts, as alert_feedback labels (docs/labels.md)."""
    from stream_app.devtools.feedback import FeedbackOptions, run_feedback
    from stream_app.kafka.topics import check_topics

    last = {"sent": 0, "at": time.monotonic()}

    def stop(sent: int) -> bool:
        if sent != last["sent"]:
            last.update(sent=sent, at=time.monotonic())
        return bool(idle_exit) and time.monotonic() - last["at"] >= idle_exit

    settings = Settings()
    check_topics(settings, (settings.topics.alerts, settings.topics.labels))
    sent = run_feedback(settings, truth, FeedbackOptions(per_day=per_day), stop)
    console.print(f"sent {sent:,} alert_feedback labels")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON, for scripts.")] = False,
) -> None:
    """Lag per group, live workers and their models, aliases, the last drift and retrain, the
    sink: one screen."""
    import json

    from stream_app.cli_status import collect_status, nothing_answered, render

    found = collect_status(Settings())
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str))
    else:
        render(found, Console())
    if nothing_answered(found):
        raise typer.Exit(1)


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path(
        "report.html"
    ),
) -> None:
    """One self-contained HTML page of the warehouse: throughput, latency, scores, quality,
    drift and model changes, alerts, dead letters (docs/report.md)."""
    from stream_app.report.page import report_page, unreadable_page
    from stream_app.report.queries import read_warehouse

    try:
        page = report_page(read_warehouse(Settings()))
    except StreamAppError as exc:
        out.write_text(unreadable_page(str(exc)), encoding="utf-8")
        Console(stderr=True).print(f"the warehouse could not be read, {out} says why: {exc}")
        raise typer.Exit(1) from None
    out.write_text(page, encoding="utf-8")
    Console().print(f"wrote {out} ({out.stat().st_size:,} bytes)")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only ClickHouse query.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="table, csv, json or arrow.")
    ] = "table",
) -> None:
    """Run a read-only SQL query on the warehouse (also while the sink holds it; with chDB and no
    sink running, this command alone opens the data directory itself)."""
    from stream_app.warehouse.sql import FORMATS, query_rows, run_query

    settings = Settings()
    if output not in FORMATS:
        raise typer.BadParameter(f"--output must be one of {', '.join(FORMATS)}")
    if output != "table":
        sys.stdout.buffer.write(run_query(settings, query, FORMATS[output], open_locally=True))
        return
    from rich.table import Table

    columns, rows = query_rows(settings, query, open_locally=True)
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)


@app.command()
def retrain(
    drift_event: Annotated[
        str | None,
        typer.Option(help="The drift_events detection that triggered the run (checked to exist)."),
    ] = None,
    json_record: Annotated[
        bool, typer.Option("--json", help="Print the run's retrain_runs record as JSON.")
    ] = False,
) -> None:
    """Train a candidate on the recent labelled window, gate it against the champion on the
    latest held-out slice, set it as challenger if it passes; every run is a retrain_runs row."""
    settings = Settings()
    # before LightGBM's and the job's threads start
    lower_cpu_priority(settings.retrain_nice, idle=settings.retrain_idle_priority)
    console.print(f"retrain run at CPU priority {cpu_priority()}", highlight=False)
    from stream_app.retraining.job import NOT_ACKNOWLEDGED, Trigger
    from stream_app.retraining.job import retrain as run_retrain

    trigger = Trigger("drift", drift_event) if drift_event else Trigger()
    record = run_retrain(settings, trigger, progress=console.print)
    console.print(f"run {record['run_id']}: {record['decision']}, candidate "
                  f"{record['candidate_version']} ({record['wall_seconds']:.1f} s)")  # fmt: skip
    if json_record:
        typer.echo(json.dumps(record))
    if record["decision"] == NOT_ACKNOWLEDGED:
        raise typer.Exit(1)


@app.command()
def estimate() -> None:
    """Estimate each model version's quality per hour and day from its scores alone (CBPE,
    calibrated on its first chargeback-labelled hours), into quality_estimates via the sink."""
    from stream_app.estimating.job import estimate as run_estimate

    sent = run_estimate(Settings(), progress=console.print)
    console.print(f"{len(sent)} window estimates sent to the warehouse (quality_estimated)")


@app.command("monitor-errors")
def monitor_errors() -> None:
    """Feed the chargebacks stored since the last run, joined with their predictions, to ADWIN
    and HDDM_A per model version; detections go to drift_events (signal error)."""
    from stream_app.error_stream.job import monitor_errors as run_monitor

    found = run_monitor(Settings(), progress=console.print)
    console.print(f"{len(found)} detections sent to drift_events")


@app.command()
def retrainer() -> None:
    """Run the retrainer: drift detections trigger training runs by a policy; a passing candidate
    is scored in shadow, promoted, watched and rolled back if it does worse."""
    from stream_app.retraining.service import run_retrainer

    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    run_retrainer(Settings())


@app.command()
def demo(
    events: Annotated[int, typer.Option(min=1, help="Transactions to produce.")] = 100_000,
    bad_fraction: Annotated[float, typer.Option(min=0, max=1)] = 0.003,
    workers: Annotated[int, typer.Option(min=1, max=8, help="Scoring worker processes.")] = 1,
    state_dir: Annotated[
        Path, typer.Option(help="Where the demo keeps models and the warehouse.")
    ] = Path(".stream_app"),
    drift: DriftOption = "none",
    labels: Annotated[
        bool, typer.Option(help="Send chargebacks, label alerts, print the quality per version.")
    ] = True,
) -> None:
    """Start everything, stream synthetic transactions, print a summary from ClickHouse, stop."""
    from stream_app.devtools.demo import DemoOptions, run_demo

    run_demo(
        DemoOptions(
            events=events,
            bad_fraction=bad_fraction,
            workers=workers,
            state_dir=state_dir,
            drift=drift,
            labels=labels,
        )
    )


@app.command("demo-drift")
def demo_drift(
    events: Annotated[
        int, typer.Option(min=1, help="The stream with the drift half-way.")
    ] = 30_000,
    shadow_events: Annotated[int, typer.Option(min=1, help="The shadow period's stream.")] = 12_000,
    watch_events: Annotated[int, typer.Option(min=1, help="The watch period's stream.")] = 8_000,
    state_dir: Annotated[
        Path, typer.Option(help="Where the demo keeps models and the warehouse.")
    ] = Path(".stream_app/drift"),
) -> None:
    """A concept drift mid-stream, the retrainer's run, shadow, promotion and watch, told from
    SQL (docs/retraining.md)."""
    from stream_app.devtools.demo_drift import DriftDemoOptions, run_drift_demo

    run_drift_demo(
        DriftDemoOptions(
            events=events,
            shadow_events=shadow_events,
            watch_events=watch_events,
            state_dir=state_dir,
        )
    )


bench_app = typer.Typer(help="Benchmarks: the service's (default) or the drift monitors'.")
LatencySeconds = Annotated[float, typer.Option(min=3, help="Duration of each paced latency run.")]
LatencyRate = Annotated[
    float, typer.Option(min=1, help="Events per second offered in the latency runs.")
]
WarmupSeconds = Annotated[
    float, typer.Option(min=3, help="A paced run before the measured ones, reported apart.")
]
app.add_typer(bench_app, name="bench")


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    events: Annotated[
        int,
        typer.Option(min=1000, help="Backlog of each throughput phase (JSON, Avro, bare, scale)."),
    ] = 200_000,
    latency_seconds: LatencySeconds = 60.0,
    latency_rate: LatencyRate = 5000.0,
    warmup_seconds: WarmupSeconds = 20.0,
    soak: Annotated[
        int, typer.Option(min=0, metavar="EVENTS", help="Also a soak run: worker RSS over EVENTS.")
    ] = 0,
    partitions: Annotated[
        int, typer.Option(min=1, help="Partitions of each keyed topic (one worker reads them all).")
    ] = 4,
    scale_pairs: Annotated[
        int,
        typer.Option(
            min=1, help="Scale-out runs: one worker then two, this many times (median reported)."
        ),
    ] = 3,
    json_path: JsonOut = None,
    profile: Annotated[
        bool, typer.Option("--profile", help="Print µs per event per stage (worker, sink).")
    ] = False,
    state_dir: Annotated[
        Path, typer.Option(help="The benchmark's models, warehouse and logs; wiped at start.")
    ] = Path(".stream_app/bench"),
) -> None:
    """Measure throughput, decision latency, warehouse visibility and memory on real processes."""
    if ctx.invoked_subcommand is not None:
        return
    from stream_app.devtools.bench.options import BenchOptions, LatencyOptions
    from stream_app.devtools.bench.render import bench_console
    from stream_app.devtools.bench.runner import bench_command

    options = BenchOptions(
        events=events,
        latency=LatencyOptions(seconds=latency_seconds, rate=latency_rate),
        latency_warmup_seconds=warmup_seconds,
        soak_events=soak,
        state_dir=state_dir,
        partitions=partitions,
        scale_pairs=scale_pairs,
    )
    bench_command(options, json_path, profile, bench_console())


@bench_app.command("drift")
def bench_drift(
    json_path: JsonOut = None,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer seeds and events.")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only the scenarios whose name and signal, as printed ('sea abrupt "
            "(error)'), contain this, e.g. generator (repeat: any of them)."
        ),
    ] = None,
) -> None:
    """Drift monitors: detection delay, missed drifts and false alarms on synthetic streams."""
    from dataclasses import replace

    from stream_app.devtools.bench.drift import DriftBenchOptions, drift_command
    from stream_app.devtools.bench.render import bench_console

    options = replace(
        DriftBenchOptions.quick() if quick else DriftBenchOptions(), only=tuple(only or ())
    )
    drift_command(options, json_path, bench_console())


@bench_app.command("guarantees")
def bench_guarantees(
    events: Annotated[
        int, typer.Option(min=1000, help="Backlog of each throughput run.")
    ] = 100_000,
    rounds: Annotated[int, typer.Option(min=1, help="Runs of each guarantee, alternated.")] = 3,
    latency_seconds: LatencySeconds = 20.0,
    latency_rate: LatencyRate = 5000.0,
    warmup_seconds: WarmupSeconds = 20.0,
    interval_ms: Annotated[
        list[int] | None,
        typer.Option(
            min=1,
            help="Also run exactly-once at this commit interval (ms) in every round; repeatable.",
        ),
    ] = None,
    warmup_events: Annotated[
        int,
        typer.Option(min=0, help="A drain of this many events per guarantee first, not measured."),
    ] = 20_000,
    json_path: JsonOut = None,
) -> None:
    """At-least-once against exactly-once: throughput ratio and decision latency, one run."""
    from stream_app.devtools.bench.guarantees import GuaranteeBenchOptions, guarantee_command
    from stream_app.devtools.bench.options import LatencyOptions
    from stream_app.devtools.bench.render import bench_console

    options = GuaranteeBenchOptions(
        events=events,
        rounds=rounds,
        latency=LatencyOptions(seconds=latency_seconds, rate=latency_rate),
        warmup_seconds=warmup_seconds,
        intervals_ms=tuple(interval_ms or ()),
        warmup_events=warmup_events,
    )
    guarantee_command(options, json_path, bench_console())


@bench_app.command("latency")
def bench_latency(
    latency_seconds: LatencySeconds = 30.0,
    latency_rate: LatencyRate = 5000.0,
    warmup_seconds: WarmupSeconds = 20.0,
    runs: Annotated[int, typer.Option(min=1, help="Measured runs, one after the other.")] = 1,
    partitions: Annotated[int, typer.Option(min=1, help="Partitions of each keyed topic.")] = 4,
    json_path: JsonOut = None,
    state_dir: Annotated[
        Path, typer.Option(help="The benchmark's model, broker log, warehouse; wiped at start.")
    ] = Path(".stream_app/bench-latency"),
) -> None:
    """The latency phase alone, on a warmed-up broker: decision, alert and visibility latency."""
    from stream_app.devtools.bench.latency_bench import LatencyBenchOptions, latency_command
    from stream_app.devtools.bench.options import LatencyOptions
    from stream_app.devtools.bench.render import bench_console

    options = LatencyBenchOptions(
        latency=LatencyOptions(seconds=latency_seconds, rate=latency_rate),
        warmup_seconds=warmup_seconds,
        runs=runs,
        partitions=partitions,
        state_dir=state_dir,
    )
    latency_command(options, json_path, bench_console())


@bench_app.command("estimate")
def bench_estimate(
    json_path: JsonOut = None,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer scenarios and events.")] = False,
) -> None:
    """The label-free estimate (CBPE) against the realised figures, per scenario and window."""
    from stream_app.devtools.bench.estimate import EstimateBenchOptions, estimate_command
    from stream_app.devtools.bench.render import bench_console

    options = EstimateBenchOptions.quick() if quick else EstimateBenchOptions()
    estimate_command(options, json_path, bench_console())


@bench_app.command("retrain")
def bench_retrain(
    events: Annotated[int, typer.Option(min=1000, help="Backlog of each drain.")] = 100_000,
    rounds: Annotated[
        int, typer.Option(min=1, help="Drains without and with retrain runs, alternated.")
    ] = 2,
    data_events: Annotated[
        int, typer.Option(min=1000, help="Labelled events the retrain runs read.")
    ] = 40_000,
    json_path: JsonOut = None,
) -> None:
    """The retraining loop: worker throughput while retrain runs go, and on the drift demo's
    scenario the time from detection to promotion and the quality recovered."""
    from stream_app.devtools.bench.render import bench_console
    from stream_app.devtools.bench.retrain import RetrainBenchOptions, retrain_command

    options = RetrainBenchOptions(events=events, rounds=rounds, data_events=data_events)
    retrain_command(options, json_path, bench_console())


@bench_app.command("online")
def bench_online(
    json_path: JsonOut = None,
    quick: Annotated[bool, typer.Option("--quick", help="One kind, a short stream.")] = False,
    events: Annotated[int, typer.Option(min=10_000, help="Events per scenario.")] = 40_000,
    train_events: Annotated[
        int, typer.Option(min=10_000, help="Events the champion is trained on.")
    ] = 200_000,
) -> None:
    """The online learner's River classifiers: shadow quality with delayed labels, and cost."""
    from stream_app.devtools.bench.online import OnlineBenchOptions, online_command
    from stream_app.devtools.bench.render import bench_console

    options = (
        OnlineBenchOptions.quick()
        if quick
        else OnlineBenchOptions(events=events, train_events=train_events)
    )
    online_command(options, json_path, bench_console())


#: the options of the benchmarks of one setting off vs on
ToggleEvents = Annotated[int, typer.Option(min=1000, help="Backlog of each drain.")]
ToggleRounds = Annotated[int, typer.Option(min=1, help="Drains with the setting off, and on.")]
ToggleTrainEvents = Annotated[
    int, typer.Option(min=10_000, help="Events the worker's model is trained on.")
]
JsonOut = JsonOut


def _bench_toggle(
    setting: str,
    events: int,
    rounds: int,
    train_events: int,
    json_path: Path | None,
    **fixed: Any,
) -> None:
    from models.train import TrainingConfig
    from stream_app.devtools.bench.render import bench_console
    from stream_app.devtools.bench.toggle import ToggleBenchOptions, toggle_command

    options = ToggleBenchOptions(
        setting,
        fixed,
        events=events,
        rounds=rounds,
        training=TrainingConfig(events=train_events),
    )
    toggle_command(options, json_path, bench_console())


@bench_app.command("online-tap")
def bench_online_tap(
    events: ToggleEvents = 100_000,
    rounds: ToggleRounds = 2,
    train_events: ToggleTrainEvents = 200_000,
    json_path: JsonOut = None,
) -> None:
    """The online learner's feature tap: worker throughput with it on vs off, in one run."""
    _bench_toggle("online_features", events, rounds, train_events, json_path)


@bench_app.command("monitoring")
def bench_monitoring(
    events: ToggleEvents = 100_000,
    rounds: ToggleRounds = 3,
    train_events: ToggleTrainEvents = 200_000,
    json_path: JsonOut = None,
) -> None:
    """The drift monitors: worker throughput and CPU per event with them on vs off, in one run."""
    # the steady cost: the score monitors read every event, a fresh worker's first day too
    _bench_toggle(
        "drift_monitoring", events, rounds, train_events, json_path, drift_score_warmup_s=0.0
    )


@bench_app.command("hotpath")
def bench_hotpath(
    model_dir: Annotated[
        list[Path] | None,
        typer.Option(help="A model registry whose champion scores (repeat to compare several)."),
    ] = None,
    events: Annotated[int, typer.Option(min=1000, help="Synthetic events per run.")] = 30_000,
    batch: Annotated[
        list[int] | None, typer.Option(min=1, help="Batch sizes (repeat; default 50, 500, 5000).")
    ] = None,
    json_path: JsonOut = None,
) -> None:
    """The worker's CPU per event by stage at several batch sizes, in process, without Kafka."""
    from stream_app.devtools.bench.hotpath import hotpath_command
    from stream_app.devtools.bench.render import bench_console

    settings = Settings()
    dirs = model_dir or [settings.model_dir]
    hotpath_command(settings, dirs, events, batch or [50, 500, 5000], json_path, bench_console())


@bench_app.command("calibrate-drift")
def bench_calibrate_drift(
    target: Annotated[
        int | None,
        typer.Option(
            min=1000, help="Events between false alarms on a stationary stream [default: 500000]."
        ),
    ] = None,
    write: Annotated[
        Path | None, typer.Option(help="Write the defaults module here (else print it).")
    ] = None,
) -> None:
    """Fit the monitors' thresholds for a false-alarm rate; prints monitors/calibrated.py."""
    from stream_app.devtools.bench.drift_calibration import TARGET, calibrate

    command = "stream-app bench calibrate-drift" + (f" --target {target}" if target else "")
    text = calibrate(target or TARGET).source(f"{command} --write monitors/calibrated.py")
    if write is None:
        typer.echo(text, nl=False)
    else:
        write.write_text(text)


def main() -> None:
    try:
        app()
    except StreamAppError as exc:
        _error(str(exc))
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        _error(invalid_settings(exc))
    except (SettingsError, tomllib.TOMLDecodeError) as exc:  # a value or a file not parsed
        _error(f"invalid settings: {exc}")
    except OSError as exc:  # a path that is missing, a directory, not writable...
        _error(str(exc))


def _error(message: str) -> NoReturn:
    """``error: message`` on stderr (its brackets printed as they are: a settings pattern is no
    markup), and exit code 2."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise SystemExit(2)
