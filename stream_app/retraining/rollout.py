"""After a training run set its candidate as challenger: shadow, promote, watch, roll back.

1. **Shadow**: wait until ``retrain_shadow_events`` predictions of the champion carry the
   challenger's score and ``retrain_shadow_min_frauds`` of their events are labelled frauds
   (or ``retrain_shadow_timeout_s`` passes), then apply the training run's gate
   (:func:`~stream_app.retraining.gate.decide`, with ``retrain_shadow_min_frauds``) to both
   models' scores of the labelled events. Passed: the challenger is promoted through the CLI's
   path; refused: the challenger is cleared.
2. **Watch**: the previous champion is scored in shadow beside the new one for
   ``retrain_watch_events`` predictions; if the new champion's realised ROC AUC on their labelled
   events is more than ``retrain_rollback_margin`` below the previous one's, the previous one is
   rolled back in; otherwise the shadow slot is cleared.

Each step is a ``retrain_runs`` row whose ``parent_run_id`` is the training run's. A restarted
retrainer finds where a detection's rollout stands from those rows (:func:`where_it_stands`) and
goes on from there. Its questions to the warehouse wait while it does not answer
(:class:`~stream_app.retraining.patience.Patience`).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from stream_app.control.client import operator_name
from stream_app.control.commands import CommandKind
from stream_app.control.promotion import issue
from stream_app.retraining.gate import GateConfig, GateResult, decide
from stream_app.retraining.job import CHALLENGER_SET, NOT_ACKNOWLEDGED, finish
from stream_app.retraining.patience import Patience
from stream_app.retraining.queries import ShadowScores, shadow_progress, shadow_scores
from stream_app.settings import Settings
from stream_app.timing import now_ms

PROMOTED = "promoted"
SHADOW_REFUSED = "shadow_refused"
KEPT = "kept"
ROLLED_BACK = "rolled_back"
#: where a detection's decisions stand (:func:`where_it_stands`)
TRAIN, SHADOW, WATCH, DONE = "train", "shadow", "watch", "done"


def where_it_stands(rows: Sequence[Mapping[str, Any]]) -> tuple[str, Mapping[str, Any] | None]:
    """What is left to decide for a detection, from its ``retrain_runs`` rows (oldest first):
    ``train`` (no training run yet); ``shadow`` or ``watch``, that step of the rollout of its
    last training run (returned with it); ``done`` (the last run and its rollout are recorded).

    >>> run = {"run_id": "r", "parent_run_id": "", "trigger": "drift", "decision": "challenger"}
    >>> where_it_stands([])
    ('train', None)
    >>> where_it_stands([run])[0]
    'shadow'
    >>> shadow = {"run_id": "s", "parent_run_id": "r", "trigger": "shadow", "decision": "promoted"}
    >>> where_it_stands([run, shadow])[0]
    'watch'
    >>> where_it_stands([run, shadow, {**shadow, "trigger": "watch", "decision": "kept"}])[0]
    'done'
    >>> where_it_stands([run, {**shadow, "decision": "shadow_refused"}])[0]
    'done'
    >>> where_it_stands([{**run, "decision": "refused"}])[0]
    'done'
    """
    runs = [row for row in rows if not row["parent_run_id"]]
    if not runs:
        return TRAIN, None
    run = runs[-1]
    steps = {
        row["trigger"]: row["decision"] for row in rows if row["parent_run_id"] == run["run_id"]
    }
    if run["decision"] != CHALLENGER_SET or WATCH in steps:
        return DONE, run
    if SHADOW not in steps:
        return SHADOW, run
    return (WATCH if steps[SHADOW] == PROMOTED else DONE), run


def follow(
    settings: Settings, run: Mapping[str, Any], patience: Patience, *, promoted: bool = False
) -> Iterator[tuple[str, str]]:
    """Shadow, promote and watch the challenger ``run`` set (``promoted``: its shadow step is
    recorded ``promoted``, only the watch is left); yields each step's trigger (``shadow``,
    ``watch``) and decision once it is recorded (fewer when ``patience.stopping`` is set on the
    way: a restart goes on from the last one recorded)."""
    champion, candidate = str(run["champion_version"]), str(run["candidate_version"])
    watch_events = settings.retrain_watch_events
    step = _Step(settings, run)
    if not promoted:
        shadow = step.period(champion, candidate, settings.retrain_shadow_events, patience)
        if shadow is None:
            return
        gate = step.gate(shadow)
        if not gate.passed:
            cleared = step.command(CommandKind.CLEAR_CHALLENGER, None)
            yield step.record("shadow", champion, gate, SHADOW_REFUSED, candidate, cleared)
            return
        problem = step.command(CommandKind.PROMOTE, candidate)
        yield step.record("shadow", champion, gate, PROMOTED, candidate, problem)
        if problem:
            return
    problem = step.command(CommandKind.SET_CHALLENGER, champion)
    period = None if problem else step.period(candidate, champion, watch_events, patience)
    if period is None:
        return
    watch = step.gate(period)  # the new champion first, the previous one in shadow
    new, previous = watch.champion.roc_auc, watch.candidate.roc_auc
    floor = previous - settings.retrain_rollback_margin
    if new < floor:
        reason = (
            f"new champion {candidate}: realised ROC AUC {new:.4f}, more than "
            f"{settings.retrain_rollback_margin} below {champion}'s {previous:.4f}"
        )
        kind, decision = CommandKind.ROLLBACK, ROLLED_BACK
    else:
        judged = "" if watch.comparison is not None else f"{watch.reason}: "
        reason = (
            f"{judged}new champion {candidate}: realised ROC AUC {new:.4f}, {champion}'s "
            f"{previous:.4f} (rollback below {floor:.4f})"
        )
        kind, decision = CommandKind.CLEAR_CHALLENGER, KEPT
    problem = step.command(kind, champion if kind is CommandKind.ROLLBACK else None)
    watch = dataclasses.replace(watch, reason=reason)
    yield step.record("watch", candidate, watch, decision, champion, problem)


class _Step:
    """What the steps of one training run's rollout share: its settings, parent and clock."""

    def __init__(self, settings: Settings, run: Mapping[str, Any]) -> None:
        self.settings, self.run = settings, run
        self.started = time.perf_counter()
        self.started_ms = now_ms()
        self.by = operator_name()
        self.shadow: ShadowScores | None = None

    def period(
        self, champion: str, challenger: str, events: int, patience: Patience
    ) -> ShadowScores | None:
        """Both models' scores of the labelled events of the period, once it is long enough or
        timed out; None when ``patience.stopping`` is set first."""
        settings = self.settings
        deadline = time.monotonic() + settings.retrain_shadow_timeout_s
        while time.monotonic() < deadline:
            progress = patience.ask(lambda: shadow_progress(settings, champion, challenger))
            if progress is None:
                return None
            scored, frauds = progress
            if scored >= events and frauds >= settings.retrain_shadow_min_frauds:
                break
            if patience.stopping.wait(1.0):
                return None
        self.started, self.started_ms = time.perf_counter(), now_ms()
        self.shadow = patience.ask(lambda: shadow_scores(settings, champion, challenger))
        return self.shadow

    def gate(self, scores: ShadowScores) -> GateResult:
        """The training run's gate on the period's labelled events (champion first)."""
        settings = self.settings
        config = dataclasses.replace(
            GateConfig.from_settings(settings), min_frauds=settings.retrain_shadow_min_frauds
        )
        return decide(config, scores.labels, scores.champion, scores.challenger)

    def command(self, kind: CommandKind, version: str | None) -> str:
        """Issue ``kind`` to every live worker; what went wrong ("" when every worker applied
        it and the registry's aliases moved)."""
        result = issue(self.settings, kind, version, self.settings.retrain_ack_timeout_s, self.by)
        if result.aliases_moved:
            return ""
        return (
            f"{kind.value} {version or ''} not applied by every live worker (refused: "
            f"{result.refused}, silent: {result.silent}, answered: {len(result.acks)})"
        )

    def record(
        self,
        trigger: str,
        champion: str,
        gate: GateResult,
        decision: str,
        version: str,
        unacknowledged: str,
    ) -> tuple[str, str]:
        """Publish the step's row (``not_acknowledged`` when its command was not applied); its
        trigger and decision."""
        assert self.shadow is not None  # a step is recorded after its period
        times, labels = self.shadow.event_time, self.shadow.labels
        record: dict[str, Any] = {
            "run_id": uuid.uuid4().hex,
            "started_time": self.started_ms,
            "trigger": trigger,
            "drift_event": self.run["drift_event"],
            "window_start": int(times[0]) if len(times) else 0,
            "holdout_start": int(times[0]) if len(times) else 0,
            "window_end": int(times[-1]) if len(times) else 0,
            "train_rows": 0,
            "train_frauds": 0,
            "holdout_rows": len(labels),
            "holdout_frauds": int(labels.sum()),
            "champion_version": champion,
            "k": self.settings.quality_top_k,
            "issued_by": self.by,
            "parent_run_id": self.run["run_id"],
        }
        if unacknowledged:
            gate = dataclasses.replace(gate, reason=f"{gate.reason}; {unacknowledged}")
            decision = NOT_ACKNOWLEDGED
        finish(self.settings, record, gate, decision, version, self.started)
        return trigger, decision
