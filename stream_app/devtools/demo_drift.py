"""``stream-app demo-drift``: the loop closing by itself, told from SQL (docs/retraining.md).

The demo's stack (broker, topics, a champion, one worker, the sink) and the retrainer as
processes. A labelled stream whose risky-abroad fraud moves half-way (``pattern-moves``); once it
is stored the retrainer reads the detections, trains, gates and sets a challenger; a second
stream of the moved regime is its shadow period, a third the watch after the promotion. The
story is then printed from the warehouse: quality per hour around the drift point, the
detections, every ``retrain_runs`` row, which versions scored which events, and the realised
quality of the new champion beside the old one's before the drift.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from models.registry import ModelMetadata
from models.train import TrainingConfig
from stream_app.devtools.demo import TABLE_WIDTH, Demo, DemoOptions
from stream_app.devtools.demo_quality import (
    DRIFT_DETECTIONS,
    around_drift,
    estimated_around_drift,
    utc,
)
from stream_app.devtools.generator import DAY_MS, AppliedDrift
from stream_app.devtools.produce import ProduceOptions
from stream_app.errors import StreamAppError
from stream_app.processes import ChildProcess, wait_until
from stream_app.settings import Settings
from stream_app.state.card import HOUR_MS
from stream_app.timing import now_ms
from stream_app.warehouse.sql import query_rows

#: the regime after the drift point of ``pattern-moves``, from the first event: the shadow and
#: watch streams
MOVED = """[[drift]]
at = 0.0
name = "risky-abroad fraud has moved"
risky_categories = ["travel", "entertainment"]
risky_countries = ["BR", "ID"]
risky_amount = [1.0, 4.0]
"""

#: every decision of the loop: the training run, its shadow step and its watch step
RETRAIN_RUNS = (
    "SELECT started_time, trigger, drift_event, champion_version AS champion, "
    "candidate_version AS candidate, round(champion_roc_auc, 4) AS champion_auc, "
    "round(candidate_roc_auc, 4) AS candidate_auc, round(statistic, 3) AS z, "
    "round(p_value, 6) AS p_value, decision FROM retrain_runs ORDER BY started_time"
)

#: the labelled events each decision used, and why it decided so
RETRAIN_DATA = (
    "SELECT trigger, window_start, holdout_start, window_end, train_rows, train_frauds, "
    "holdout_rows, holdout_frauds, round(wall_seconds, 1) AS seconds "
    "FROM retrain_runs ORDER BY started_time"
)
RETRAIN_REASONS = "SELECT trigger, reason FROM retrain_runs ORDER BY started_time"

#: which versions scored which events (champion, and the one in shadow)
SCORED_BY = (
    "SELECT model_version AS champion, challenger_version AS shadow, "
    "min(event_time) AS first_event, max(event_time) AS last_event, count() AS events "
    "FROM predictions GROUP BY champion, shadow ORDER BY first_event"
)


def recovery(drift_ms: int, old: str, new: str, k: int) -> str:
    """Realised quality of the old champion before and after the drift point and of the new
    one after its promotion, P@k (the share of labelled frauds among the ``k`` highest scores of
    the period) included (the AUC over arrays aggregated in a subquery: ClickHouse #77605)."""
    at = f"toDateTime64('{utc(drift_ms)}', 3, 'UTC')"
    return (
        "SELECT period, version, n_labelled AS labelled, n_frauds AS frauds, "  # noqa: S608  # no user input
        "round(tp / (tp + fp), 3) AS precision, round(tp / (tp + fn), 3) AS recall, "
        "round(2 * tp / (2 * tp + fp + fn), 3) AS f1, "
        "round(arrayROCAUC(scores, truths), 3) AS roc_auc, "
        "round(arrayCount(t -> t.2, top) / length(top), 3) AS p_at_k FROM ("
        f"SELECT multiIf(model_version = '{new}', 'new champion after its promotion', "
        f"event_time < {at}, 'old champion before the drift', "
        "'old champion after the drift') AS period, model_version AS version, "
        "countIf(labelled) AS n_labelled, countIf(labelled AND is_fraud) AS n_frauds, "
        "countIf(labelled AND flagged AND is_fraud) AS tp, "
        "countIf(labelled AND flagged AND NOT is_fraud) AS fp, "
        "countIf(labelled AND NOT flagged AND is_fraud) AS fn, "
        "groupArrayIf(score, labelled) AS scores, "
        "groupArrayIf(toUInt8(is_fraud), labelled) AS truths, "
        "arraySlice(arrayReverseSort(groupArray((score, labelled AND is_fraud))), 1, "
        f"{int(k)}) AS top FROM prediction_labels WHERE model_version IN ('{old}', '{new}') "
        "GROUP BY period, version) ORDER BY period DESC"  # old before, old after, new
    )


#: the streams start at this hour of the day (UTC) whenever the demo runs, so that they fall in
#: daytime: the generator's fraud follows the hour (night-time spikes from 0 to 6 h), and a
#: shadow period at night left the candidate no better than the champion
START_HOUR = 6


def day_start(latest_ms: int) -> int:
    """The last ``START_HOUR`` o'clock (UTC) at or before ``latest_ms``.

    >>> utc(day_start(1_700_000_000_000)), utc(day_start(1_700_000_000_000 - 20 * HOUR_MS))
    ('2023-11-14 06:00:00.000', '2023-11-13 06:00:00.000')
    """
    return (latest_ms - START_HOUR * HOUR_MS) // DAY_MS * DAY_MS + START_HOUR * HOUR_MS


@dataclass(frozen=True)
class DriftDemoOptions:
    events: int = 30_000  # the stream with the drift half-way
    shadow_events: int = 12_000
    watch_events: int = 8_000
    shadow_min_frauds: int = 300  # labelled frauds a shadow or watch period needs (~4.4 %)
    fraud_rate: float = 0.05
    champion_events: int = 40_000
    num_trees: int = 100  # the candidate's
    state_dir: Path = Path(".stream_app/drift")
    seed: int = 7


class DriftDemo(Demo):
    """The demo with the retrainer: drift, training run, shadow, promotion, watch."""

    def __init__(self, options: DriftDemoOptions, console: Console) -> None:
        super().__init__(
            DemoOptions(
                events=options.events,
                bad_fraction=0.0,
                state_dir=options.state_dir,
                seed=options.seed,
                live_alerts=0,
                drift="pattern-moves",
                fraud_rate=options.fraud_rate,
            ),
            console,
        )
        self.story = options
        self._chargebacks = 0

    def _play(self) -> None:
        settings = self._start_infrastructure()
        total = self.story.events + self.story.shadow_events + self.story.watch_events
        span_ms = total * self.options.time_scale * 1.2  # the mean gap is time_scale ms
        start_ms = day_start(now_ms() - int(span_ms) - HOUR_MS)
        first = self._phase(
            settings, "the drift", replace(self._produce_options(), start_ms=start_ms)
        )
        self._start_retrainer(settings)
        run = self._decision(settings, "drift")
        if run["decision"] == "challenger":
            moved = self.stack.state_dir / "moved.toml"
            moved.write_text(MOVED, encoding="utf-8")
            after = replace(
                self._produce_options(),
                start_ms=self._last_event(settings),
                events=self.story.shadow_events,
                seed=self.story.seed + 1,
                drift=str(moved),
            )
            self._phase(settings, "the shadow period", after)
            if self._decision(settings, "shadow")["decision"] == "promoted":
                watched = (str(run["candidate_version"]), str(run["champion_version"]))
                wait_until(lambda: self._running(watched), 120, "the watch to start", 0.5)
                watch = replace(
                    after,
                    events=self.story.watch_events,
                    seed=after.seed + 1,
                    start_ms=self._last_event(settings),
                )
                self._phase(settings, "the watch", watch)
                self._decision(settings, "watch")
        self._story(settings, first.drift, run)

    def _start_infrastructure(self) -> Settings:
        """As the demo's, with a champion trained afresh: a previous run promoted another."""
        shutil.rmtree(self.stack.model_dir, ignore_errors=True)
        return super()._start_infrastructure()

    def _settings_overrides(self) -> dict[str, Any]:
        story = self.story
        return {
            "retrain_min_frauds": 200,
            "retrain_num_trees": story.num_trees,
            "quality_top_k": 100,
            "retrainer_min_new_frauds": 200,
            "retrain_shadow_events": story.shadow_events,
            "retrain_shadow_min_frauds": story.shadow_min_frauds,
            "retrain_watch_events": story.watch_events,
            "retrain_shadow_timeout_s": 120.0,
            # its story (docs/retraining.md) was measured with the score monitor reading from
            # a fresh worker's first event: its 5 hours of event time are within the warm-up
            "drift_score_warmup_s": 0.0,
        }

    def _ensure_champion(self) -> ModelMetadata:
        """The champion; this story streams its own seed's population, as it was measured
        (docs/retraining.md), not the champion's as the plain demo does."""
        champion = super()._ensure_champion()
        self.population = None
        return champion

    def _training(self) -> TrainingConfig:
        return TrainingConfig(
            events=self.story.champion_events, fraud_rate=self.story.fraud_rate, num_trees=60
        )

    def _phase(self, settings: Settings, name: str, options: ProduceOptions) -> Any:
        """One stream, stored with its chargebacks."""
        self.console.print(f"[bold]stream[/bold] {options.events:,} events: {name}")
        report = self._stream(settings, options)
        self._chargebacks += report.labels
        query = "SELECT count() FROM labels WHERE label_source = 'chargeback'"
        wait_until(
            lambda: int(query_rows(settings, query)[1][0][0]) == self._chargebacks,
            120,
            "the sink to store every chargeback",
            0.5,
        )
        return report

    @staticmethod
    def _last_event(settings: Settings) -> int:
        """A millisecond after the last event stored: where the next stream starts."""
        query = "SELECT toUnixTimestamp64Milli(max(event_time)) + 1 FROM predictions"
        return int(query_rows(settings, query)[1][0][0])

    def _start_retrainer(self, settings: Settings) -> None:
        retrainer = ChildProcess("retrainer", ["retrainer"], settings, self.logs)
        self.children.append(retrainer)
        self.console.print("[bold]retrainer[/bold] started: it reads the detections stored so far")

    def _decision(self, settings: Settings, trigger: str) -> dict[str, Any]:
        """The ``retrain_runs`` row of ``trigger`` once the retrainer recorded it."""
        query = f"SELECT * FROM retrain_runs WHERE trigger = '{trigger}'"  # noqa: S608
        found: list[dict[str, Any]] = []

        def recorded() -> bool:
            for child in self.children:
                child.check_alive()
            columns, rows = query_rows(settings, query)
            found[:] = [dict(zip(columns, row, strict=True)) for row in rows]
            return bool(found)

        wait_until(recorded, 300, f"the retrainer's {trigger} decision", 1.0)
        row = found[0]
        self.console.print(f"[bold]{trigger}[/bold] decision: {row['decision']}: {row['reason']}")
        return row

    def _running(self, versions: tuple[str, str]) -> bool:
        healths = [self._worker_health(port) for port in self.worker_ports]
        return all(
            h is not None and (h["model_version"], h["challenger_version"]) == versions
            for h in healths
        )

    def _story(
        self, settings: Settings, drift: tuple[AppliedDrift, ...], run: dict[str, Any]
    ) -> None:
        if not drift:
            raise StreamAppError("the stream applied no drift point")
        point = drift[0]
        self.console.print(
            f"[bold]drift[/bold] at event {point.index:,} "
            f"(event time {utc(point.event_time)} UTC): {point.name}"
        )
        title = f"Quality per hour around the drift at {utc(point.event_time)}"
        self._table(settings, title, around_drift(point.event_time, 3), with_sql=True)
        hours = self._reference_hours(settings, point.event_time)
        self._run_estimate(settings, hours)
        tables = [
            (
                f"Estimated without labels (each version calibrated on its first {hours:.2f} h of "
                "event time) beside the realised ROC AUC, per hour (docs/model-quality.md)",
                estimated_around_drift(point.event_time, 3),
            ),
            ("Drift detections (the first 20 by event time)", DRIFT_DETECTIONS),
            ("The retrainer's decisions (retrain_runs)", RETRAIN_RUNS),
            ("The labelled events each decision used (event time)", RETRAIN_DATA),
            ("Why", RETRAIN_REASONS),
            ("Which versions scored which events (champion, and in shadow)", SCORED_BY),
        ]
        old, new = str(run["champion_version"]), str(run["candidate_version"])
        if run["decision"] == "challenger":
            tables.append(
                (
                    "Realised quality: the new champion after its promotion, the old one "
                    f"before and after the drift (P@k: k = {settings.quality_top_k})",
                    recovery(point.event_time, old, new, settings.quality_top_k),
                )
            )
        for title, query in tables:
            self._table(settings, title, query, with_sql=True)

    @staticmethod
    def _reference_hours(settings: Settings, drift_ms: int) -> float:
        """Half the event time from the first prediction to the drift point: the estimate's
        calibration ends well before the drift, and estimates the hours before it too."""
        query = "SELECT toUnixTimestamp64Milli(min(event_time)) FROM predictions"
        first = int(query_rows(settings, query)[1][0][0])
        return (drift_ms - first) / 2 / HOUR_MS


def run_drift_demo(options: DriftDemoOptions) -> None:
    console = Console()
    console.width = max(console.width, TABLE_WIDTH)  # Console.print caps a table at its width
    DriftDemo(options, console).run()
