"""``stream-app demo``: the whole loop on real parts, from an empty broker to an SQL summary."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from models.registry import FileModelStore, ModelMetadata
from models.train import TrainingConfig, training_population
from stream_app.alert_ticker import AlertTicker
from stream_app.control.client import publish_model_version
from stream_app.devtools.demo_quality import (
    DRIFT_DETECTIONS,
    ESTIMATED_BY_DAY,
    LABELS_BY_SOURCE,
    PREDICTED_HOURS,
    QUALITY_BY_DAY,
    FeedbackThread,
    around_drift,
    utc,
)
from stream_app.devtools.feedback import FeedbackOptions
from stream_app.devtools.produce import ProduceOptions, ProduceReport, produce
from stream_app.devtools.stack import LocalStack
from stream_app.errors import StreamAppError
from stream_app.estimating.job import estimate
from stream_app.kafka.kafka_jars import KAFKA_VERSION
from stream_app.processes import ChildProcess, get_json, wait_until
from stream_app.settings import Settings
from stream_app.warehouse.sql import query_rows

SUMMARY_QUERIES = (
    (
        "Predictions per model version",
        "SELECT model_version, count() AS events, uniqExact(event_id) AS unique_events, "
        "round(avg(score), 4) AS mean_score, countIf(decision = 'decline') AS declined "
        "FROM predictions GROUP BY model_version ORDER BY model_version",
    ),
    (
        "Score distribution",
        "SELECT floor(score, 1) AS score_from, count() AS events, "
        "bar(log10(count() + 1), 0, 6, 30) AS log_scale FROM predictions "
        "GROUP BY score_from ORDER BY score_from",
    ),
    (
        "Highest-scored cards",
        "SELECT card_id, round(max(score), 4) AS max_score, count() AS events, "
        "countIf(decision = 'decline') AS declined FROM predictions "
        "GROUP BY card_id ORDER BY max_score DESC, card_id LIMIT 5",
    ),
    (
        "Alerts per rule",
        "SELECT arrayJoin(rules) AS rule, any(severity) AS severity, count() AS alerts, "
        "uniqExact(card_id) AS cards, round(avg(score), 3) AS mean_score "
        "FROM alerts GROUP BY rule ORDER BY alerts DESC",
    ),
    (
        "Dead letters by reason",
        "SELECT reason, count() AS records FROM dead_letters GROUP BY reason ORDER BY records DESC",
    ),
)
#: tables are printed this wide at least (a pipe is 80 columns): the quality tables need it
TABLE_WIDTH = 140


@dataclass(frozen=True)
class DemoOptions:
    events: int = 100_000
    bad_fraction: float = 0.003
    workers: int = 1
    state_dir: Path = Path(".stream_app")
    time_scale: float = 600.0
    seed: int = 42
    live_alerts: int = 8
    drift: str = "none"
    labels: bool = True  # chargebacks and alert feedback, and the quality they give
    fraud_rate: float = 0.01


class Demo:
    """Owns every process the demo starts and stops them all, whatever happens."""

    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.stack = LocalStack(options.state_dir)
        self.logs = self.stack.logs
        self.children: list[ChildProcess] = []
        self.worker_ports: list[int] = []
        self.population: int | None = None

    def run(self) -> None:
        try:
            self._play()
        except KeyboardInterrupt:
            self.console.print("\ninterrupted: stopping everything the demo started")
            raise SystemExit(130) from None  # the finally clause below stops everything
        finally:
            self._stop_all()

    def _play(self) -> None:
        started = time.monotonic()
        settings = self._start_infrastructure()
        report = self._stream(settings, self._produce_options())
        if self.options.labels:
            self._label(settings, report)
        self._summary(settings, report, time.monotonic() - started)

    def _start_infrastructure(self) -> Settings:
        """The broker, the topics, the model, the sink and the workers; the settings returned
        point at the sink's SQL endpoint."""
        options, console, stack = self.options, self.console, self.stack
        for previous in (stack.state_dir / "warehouse", stack.state_dir / "broker"):
            if previous.exists():
                shutil.rmtree(previous)  # every demo starts from an empty broker and warehouse
        stack.start()
        console.print(
            f"[bold]broker[/bold] Apache Kafka {KAFKA_VERSION} on {stack.bootstrap_servers}"
        )
        settings = stack.settings(**self._settings_overrides())
        console.print(f"[bold]topics[/bold] created with {settings.topics.partitions} partitions")
        self._ensure_champion()
        for metadata in FileModelStore(settings.model_dir).versions():
            publish_model_version(settings, metadata)
        sink = ChildProcess("sink", ["sink"], settings, self.logs)
        self.children.append(sink)
        for index in range(options.workers):
            worker_settings = settings.model_copy(update={"worker_id": f"demo-worker-{index + 1}"})
            self.children.append(
                ChildProcess(f"worker-{index + 1}", ["worker"], worker_settings, self.logs)
            )
        settings = settings.model_copy(update={"sql_port": sink.web_port()})
        self.worker_ports = [worker.web_port() for worker in self.children[1:]]
        wait_until(lambda: self._ready(settings), 90, "the sink and workers to be ready")
        console.print(
            f"[bold]running[/bold] {options.workers} worker(s) and the sink; logs in {self.logs}/"
        )
        return settings

    def _ensure_champion(self) -> ModelMetadata:
        """The registry's champion (trained if there is none); the demo streams the customers it
        was trained on: another seed's population is other cards and terminals, a shift the
        feature monitors rightly report (docs/monitors.md)."""
        champion = self.stack.ensure_model(
            self._training(), lambda m: self.console.print(f"[bold]model[/bold] {m}")
        )
        self.population = training_population(champion)
        return champion

    def _ready(self, settings: Settings) -> bool:
        for child in self.children:
            child.check_alive()
        if get_json(f"{settings.sql_url}/health") is None:
            return False
        assigned = 0
        for health in map(self._worker_health, self.worker_ports):
            if health is None:
                return False
            assigned += len(health["assigned"])
        return assigned == settings.topics.partitions

    def _settings_overrides(self) -> dict[str, Any]:
        """Settings of this demo that differ from the defaults."""
        return {}

    def _training(self) -> TrainingConfig:
        """How the champion is trained when the registry has none."""
        return TrainingConfig()

    @staticmethod
    def _worker_health(port: int) -> dict[str, Any] | None:
        health: dict[str, Any] | None = get_json(f"http://127.0.0.1:{port}/health")
        return health

    def _produce_options(self) -> ProduceOptions:
        options = self.options
        return ProduceOptions(
            events=options.events,
            seed=options.seed,
            fraud_rate=options.fraud_rate,
            bad_fraction=options.bad_fraction,
            time_scale=options.time_scale,
            drift=options.drift,
            labels=options.labels,
            truth_file=self._truth_file if options.labels else None,
            population_seed=self.population,
        )

    def _stream(self, settings: Settings, produce_options: ProduceOptions) -> ProduceReport:
        """Produce in a thread; show one progress line a second until every record is stored."""
        latest: list[ProduceReport] = [ProduceReport()]
        outcome: list[ProduceReport | BaseException] = []

        def run_producer() -> None:
            try:
                outcome.append(
                    produce(settings, produce_options, lambda r: latest.__setitem__(0, r))
                )
            except BaseException as exc:
                outcome.append(exc)

        start = time.monotonic()
        stored_before = self._stored(settings)
        threading.Thread(target=run_producer, name="producer", daemon=True).start()
        ticker = AlertTicker(settings, self._show_alert, self.options.live_alerts).start()
        try:
            return self._follow(settings, start, stored_before, latest, outcome)
        finally:
            ticker.stop()

    @property
    def _truth_file(self) -> Path:
        return self.stack.state_dir / "truth.txt"

    def _label(self, settings: Settings, report: ProduceReport) -> None:
        """The investigators label alerts until they read them all; then wait until the sink
        stored every label (the chargebacks were sent with the transactions)."""
        feedback = FeedbackThread(settings, self._truth_file, FeedbackOptions())
        try:
            wait_until(feedback.caught_up, 120, "the investigators to read every alert", 0.5)
        finally:
            verdicts = feedback.stop()
        query = (
            "SELECT countIf(label_source = 'chargeback'), "
            "countIf(label_source = 'alert_feedback') FROM labels"
        )
        expected = [report.labels, verdicts]
        wait_until(
            lambda: [int(n) for n in query_rows(settings, query)[1][0]] == expected,
            120,
            "the sink to store every label",
            0.5,
        )
        self.console.print(
            f"[bold]labels[/bold] stored {report.labels:,} chargebacks (fraud or cleared) + "
            f"{verdicts:,} alert-feedback verdicts"
        )

    def _show_alert(self, line: str) -> None:
        self.console.print(f"[red]{escape(line)}[/red]", highlight=False, soft_wrap=True)

    def _follow(
        self,
        settings: Settings,
        start: float,
        stored_before: tuple[int, int],
        latest: list[ProduceReport],
        outcome: list[ProduceReport | BaseException],
    ) -> ProduceReport:
        """Progress until every record produced (after ``stored_before`` were stored) is
        stored."""
        while True:
            time.sleep(1.0)
            for child in self.children:
                child.check_alive()
            if outcome and isinstance(outcome[0], BaseException):
                raise StreamAppError(f"producer failed: {outcome[0]}")
            stored = self._stored(settings)
            stored_predictions = stored[0] - stored_before[0]
            stored_dead = stored[1] - stored_before[1]
            self._progress_line(
                latest[0], stored_predictions + stored_dead, time.monotonic() - start
            )
            if outcome:
                final = outcome[0]
                assert isinstance(final, ProduceReport)
                if stored_predictions >= final.valid and stored_dead >= final.malformed:
                    if self.console.is_terminal:
                        self.console.print()
                    return final
            if time.monotonic() - start > 600:
                raise StreamAppError("the pipeline did not store every event within 10 minutes")

    @staticmethod
    def _stored(settings: Settings) -> tuple[int, int]:
        _, rows = query_rows(
            settings, "SELECT (SELECT count() FROM predictions), (SELECT count() FROM dead_letters)"
        )
        return int(rows[0][0]), int(rows[0][1])

    def _progress_line(self, produced: ProduceReport, stored: int, elapsed: float) -> None:
        scored = dead = 0
        for health in map(self._worker_health, self.worker_ports):
            if health:
                scored += health["scored"]
                dead += health["dead_lettered"]
        line = (
            f"produced {produced.valid + produced.malformed:,} | scored {scored:,} | "
            f"dead-lettered {dead:,} | stored {stored:,} | {stored / elapsed:,.0f} events/s"
        )
        if self.console.is_terminal:
            self.console.print(line, end="\r", highlight=False)
        elif int(elapsed) % 5 == 0:  # logs and pipes get a line every few seconds, not a \r
            self.console.print(line, highlight=False)

    def _summary(self, settings: Settings, report: ProduceReport, seconds: float) -> None:
        predictions, dead_letters = self._stored(settings)
        self.console.print(
            f"[bold]produced[/bold] {report.valid:,} valid ({report.fraud:,} fraud) + "
            f"{report.malformed:,} malformed; [bold]stored[/bold] {predictions:,} predictions "
            f"+ {dead_letters:,} dead letters"
        )
        for point in report.drift:
            self.console.print(
                f"[bold]drift[/bold] at event {point.index:,} "
                f"(event time {utc(point.event_time)} UTC): {point.name}"
            )
        for title, query in SUMMARY_QUERIES:
            self._table(settings, title, query)
        if self.options.labels:
            self._quality(settings, report)
        if settings.drift_monitoring:
            title = "Drift detections (the first 20 by event time)"
            self._table(settings, title, DRIFT_DETECTIONS, with_sql=True)
        self.console.print(f"demo finished in {seconds:.0f}s. More SQL, once the demo has stopped:")
        command = self._sql_command("SELECT count() FROM predictions")
        self.console.print(f"  {command}", soft_wrap=True)

    def _quality(self, settings: Settings, report: ProduceReport) -> None:
        """Quality per model version and day; with a drift, per hour around each point."""
        self._table(settings, "Labels by source", LABELS_BY_SOURCE)
        queries = [("Quality per model version and day (docs/model-quality.md)", QUALITY_BY_DAY)]
        queries += [
            (
                f"Quality per hour around the drift at {utc(p.event_time)}: {p.name}",
                around_drift(p.event_time),
            )
            for p in report.drift
        ]
        for title, query in queries:
            self._table(settings, title, query, with_sql=True)
        self._estimate(settings)

    def _estimate(self, settings: Settings) -> None:
        """``stream-app estimate`` calibrated on the first third of the run's event time, and
        its daily estimates beside the realised figures."""
        _, rows = query_rows(settings, PREDICTED_HOURS)
        hours = max(float(rows[0][0]) / 3, 1.0)
        self._run_estimate(settings, hours)
        title = (
            f"Estimated without labels (calibrated on the first {hours:.1f} h of event time) "
            "beside the realised figures (docs/model-quality.md)"
        )
        self._table(settings, title, ESTIMATED_BY_DAY, with_sql=True)

    @staticmethod
    def _run_estimate(settings: Settings, reference_hours: float) -> None:
        """``stream-app estimate``, each version calibrated on its first ``reference_hours`` of
        event time; return once the sink stored every estimate it sent."""
        update = {"estimate_reference_hours": reference_hours}
        sent = estimate(settings.model_copy(update=update))
        run = sent[0]["run_id"] if sent else ""
        stored = f"SELECT count() FROM quality_estimates WHERE run_id = '{run}'"  # noqa: S608
        wait_until(lambda: query_rows(settings, stored)[1][0][0] == len(sent), 60, "the estimates")

    def _table(
        self, settings: Settings, title: str, query: str, with_sql: bool = False
    ) -> list[tuple[str, ...]]:
        """``query``'s answer printed as a table (and returned as printed); ``with_sql``: the
        command that runs it again after."""
        columns, rows = query_rows(settings, query)
        printed = [tuple(str(v) for v in row) for row in rows]
        table = Table(*columns, title=title, title_justify="left")
        for row in printed:
            table.add_row(*row)
        self.console.print(table, width=max(self.console.width, TABLE_WIDTH))
        if with_sql:
            command = escape(self._sql_command(query))
            self.console.print(f"  {command}", highlight=False, soft_wrap=True)
        return printed

    def _sql_command(self, query: str) -> str:
        """The command that runs ``query`` on the demo's warehouse once the demo stopped."""
        dsn = ""
        if self.options.state_dir != Path(".stream_app"):
            dsn = f"STREAM_APP_WAREHOUSE_DSN=chdb://{self.options.state_dir}/warehouse "
        return f'{dsn}.venv/bin/stream-app sql "{query}"'

    def _stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.stack.stop()


def run_demo(options: DemoOptions) -> None:
    Demo(options, Console()).run()
