"""Alerts of one scored batch: rules, per-card cool-down, and the features behind each score.

Rules come from configuration (``stream_app.alerts``). Contributions (LightGBM ``pred_contrib``)
are computed only for the rows that alert, so the hot path stays one batched ``predict``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stream_app.alerts import CooldownState, RuleSet, apply_cooldown
from stream_app.codecs.avro import AvroRecordCodec
from stream_app.events import FloatArray, TransactionBatch
from stream_app.features import EVENT_FEATURES, FEATURE_NAMES
from stream_app.scoring.model import LoadedModel
from stream_app.state import VELOCITY_FEATURES

SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2}


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
        self.suppressed = 0

    def build(
        self,
        batch: TransactionBatch,
        features: FloatArray,
        scores: FloatArray,
        champion: LoadedModel,
        create_times: Sequence[int],
        card_state: Callable[[str], CooldownState],
    ) -> list[AlertRecord]:
        columns = {"score": scores, "amount": batch.amount}
        first = len(EVENT_FEATURES)
        for i, name in enumerate(VELOCITY_FEATURES):
            columns[name] = features[:, first + i]
        fired = self.rules.evaluate(columns, batch.merchant_category)
        if not fired:
            return []
        kept, suppressed = apply_cooldown(
            fired, batch.card_id, batch.event_time, card_state, self._cooldown_ms
        )
        self.suppressed += suppressed
        self.fired += len(kept)
        if not kept:
            return []
        rows = np.fromiter((row for row, _ in kept), dtype=np.int64, count=len(kept))
        contributions = np.asarray(
            champion.booster.predict(features[rows], pred_contrib=True, num_threads=1)
        )[:, : len(FEATURE_NAMES)]  # the last column is the bias
        alerted_time = int(time.time() * 1000)
        records = []
        for (row, rule_names), contribution in zip(kept, contributions, strict=True):
            top = np.argsort(-contribution)[: self._top_k]
            severity = max(
                (self.rules.rule(n).severity for n in rule_names), key=lambda s: SEVERITY_ORDER[s]
            )
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
                    "top_features": [FEATURE_NAMES[i] for i in top],
                    "top_contributions": [float(contribution[i]) for i in top],
                    "worker_id": self._worker_id,
                }
            )
            records.append(AlertRecord(batch.card_id[row].encode(), value))
        return records
