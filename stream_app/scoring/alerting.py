"""Alerts of one scored batch: rules, per-card cool-down, and the features behind each score.

Rules come from configuration (``stream_app.alerts``). Contributions (LightGBM ``pred_contrib``)
are computed only for the rows that alert, so the hot path stays one batched ``predict``, and on a
thread of their own with the alert records: LightGBM's C code runs without the GIL, so the scoring
thread encodes the batch's predictions meanwhile (:meth:`AlertBuilder.begin`, then
:meth:`PendingAlerts.records`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from models.runtime import ModelRuntime
from stream_app.alerts import CooldownState, RuleSet, apply_cooldown
from stream_app.codecs.avro import AvroRecordCodec
from stream_app.events import FloatArray, TransactionBatch
from stream_app.features import EVENT_FEATURES, FEATURE_NAMES
from stream_app.state import VELOCITY_FEATURES


def rule_columns(
    batch: TransactionBatch, features: FloatArray, scores: FloatArray
) -> dict[str, FloatArray]:
    """What the rules may test, by name: the score, the amount and the velocity features."""
    columns = {"score": scores, "amount": batch.amount}
    first = len(EVENT_FEATURES)
    for i, name in enumerate(VELOCITY_FEATURES):
        columns[name] = features[:, first + i]
    return columns


def top_contributions(contribution: FloatArray, k: int) -> tuple[list[str], list[float]]:
    """The ``k`` features that pushed one event's score up the most, and by how much, from its
    row of ``pred_contrib`` (the trailing bias column, if present, is ignored)."""
    top = np.argsort(-contribution[: len(FEATURE_NAMES)])[:k]
    return [FEATURE_NAMES[i] for i in top], [float(contribution[i]) for i in top]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    key: bytes
    value: bytes


class AlertBuilder:
    """Evaluates the rules on a batch and encodes the alerts that survive the cool-down."""

    def __init__(
        self,
        codec: AvroRecordCodec,
        rules: RuleSet,
        cooldown_ms: int,
        worker_id: str,
        top_k: int = 3,
    ) -> None:
        self._codec = codec
        self.rules = rules  # replaced as a whole when the rules file changes
        self._cooldown_ms = cooldown_ms
        self._worker_id = worker_id
        self._top_k = top_k
        self.fired = 0
        self.by_rule: Counter[str] = Counter()  # alerts kept, by rule (each rule an alert fired)
        self.suppressed = 0
        self._explainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explainer")

    def begin(
        self,
        batch: TransactionBatch,
        features: FloatArray,
        scores: FloatArray,
        champion: ModelRuntime,
        create_times: Sequence[int],
        card_state: Callable[[str], CooldownState],
    ) -> PendingAlerts:
        """Rules and cool-down now; the contributions and records of the rows that alert start
        on the explainer thread. Nothing else may use ``champion`` until ``records()`` returned."""
        fired = self.rules.evaluate(rule_columns(batch, features, scores), batch.merchant_category)
        kept: list[tuple[int, list[str]]] = []
        if fired:
            kept, suppressed = apply_cooldown(
                fired, batch.card_id, batch.event_time, card_state, self._cooldown_ms
            )
            self.suppressed += suppressed
            self.fired += len(kept)
            for _, rule_names in kept:
                self.by_rule.update(rule_names)
        if not kept:
            return PendingAlerts(None)
        rows = np.fromiter((row for row, _ in kept), dtype=np.int64, count=len(kept))
        return PendingAlerts(
            self._explainer.submit(
                self._explain, batch, features[rows], scores, champion, create_times, kept
            )
        )

    def drain(self) -> None:
        """Wait until the explainer finished what it was given: after a batch failed between
        ``begin`` and ``records()``, before the champion is used again."""
        self._explainer.submit(lambda: None).result()

    def close(self) -> None:
        self._explainer.shutdown()

    def _explain(
        self,
        batch: TransactionBatch,
        kept_features: FloatArray,
        scores: FloatArray,
        champion: ModelRuntime,
        create_times: Sequence[int],
        kept: list[tuple[int, list[str]]],
    ) -> list[AlertRecord]:
        """The alert records of the ``kept`` rows (their feature rows in ``kept_features``)."""
        contributions = champion.contributions(kept_features)
        alerted_time = int(time.time() * 1000)
        records = []
        for (row, rule_names), contribution in zip(kept, contributions, strict=True):
            top_features, top_values = top_contributions(contribution, self._top_k)
            severity = self.rules.severity(rule_names)
            value = self._codec.encode(
                {
                    "event_id": batch.event_id[row],
                    "card_id": batch.card_id[row],
                    "event_time": int(batch.event_time[row]),
                    "input_create_time": create_times[row],
                    "alerted_time": alerted_time,
                    "score": float(scores[row]),
                    "model_version": champion.version,
                    "rules": rule_names,
                    "severity": severity,
                    "amount": float(batch.amount[row]),
                    "merchant_category": batch.merchant_category[row],
                    "top_features": top_features,
                    "top_contributions": top_values,
                    "worker_id": self._worker_id,
                }
            )
            records.append(AlertRecord(batch.card_id[row].encode(), value))
        return records


@dataclass(frozen=True, slots=True)
class PendingAlerts:
    """The alerts of one batch, being explained and encoded on the explainer thread."""

    explained: Future[list[AlertRecord]] | None  # None: nothing in the batch alerts

    def records(self) -> list[AlertRecord]:
        return [] if self.explained is None else self.explained.result()
