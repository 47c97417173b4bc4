"""Train LightGBM on synthetic transactions with the serving feature code; register it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from models.evaluation import average_precision, best_f1_threshold, precision_recall_f1, roc_auc
from models.registry import CHAMPION, ModelMetadata, ModelStore
from monitors.reference import training_reference
from stream_app.devtools.generator import TransactionGenerator
from stream_app.events import Transaction, TransactionBatch
from stream_app.features import (
    CATEGORICAL_FEATURES,
    EVENT_FEATURES,
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    compute_features,
)
from stream_app.state import replay_velocity_features

#: the features the drift monitors watch: the event's own. Not the calendar (it follows the
#: clock of the day, not a population) nor the per-card velocity (it depends on how much of each
#: card's history a worker has seen, and on the stream's pace): both move on a stationary stream.
MONITORED_FEATURES = tuple(
    name for name in EVENT_FEATURES if name not in ("hour_of_day", "day_of_week", "is_night")
)
MONITORED_COLUMNS = [FEATURE_NAMES.index(name) for name in MONITORED_FEATURES]


@dataclass(frozen=True)
class TrainingConfig:
    """How much synthetic data to train on and how big the model is."""

    events: int = 200_000
    seed: int = 1
    fraud_rate: float = 0.01
    num_trees: int = 200
    num_leaves: int = 31
    holdout_fraction: float = 0.2
    time_scale: float = 600.0  # ~33 h of event time for 200k events: days and nights


def training_features(events: Sequence[Transaction]) -> np.ndarray:
    """The feature matrix training learns from: the per-card features replay the serving code
    over the history, in production (consumption) order."""
    batch = TransactionBatch.from_transactions(list(events))
    velocity = replay_velocity_features(
        batch.card_id, batch.merchant_id, batch.amount, batch.event_time
    )
    return compute_features(batch, velocity)


def train_model(
    store: ModelStore,
    config: TrainingConfig,
    *,
    promote: bool = True,
    by: str = "stream-app models train",
    progress: Callable[[str], None] = lambda _: None,
) -> ModelMetadata:
    """Generate data, train, evaluate on a later held-out slice, register (and make champion)."""
    started = time.perf_counter()
    progress(f"generating {config.events:,} synthetic transactions (seed {config.seed})")
    generated = list(
        itertools.islice(
            TransactionGenerator(
                seed=config.seed, fraud_rate=config.fraud_rate, time_scale=config.time_scale
            ),
            config.events,
        )
    )
    features = training_features([g.event for g in generated])
    labels = np.fromiter((g.is_fraud for g in generated), dtype=np.float64, count=len(generated))
    split = int(len(generated) * (1.0 - config.holdout_fraction))  # holdout = the latest events
    params: dict[str, Any] = {
        "objective": "binary",
        "num_leaves": config.num_leaves,
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "num_threads": 2,
        "verbose": -1,
        "seed": config.seed,
        "deterministic": True,
    }
    progress(f"training {config.num_trees} trees x {config.num_leaves} leaves on {split:,} rows")
    train_set = lgb.Dataset(
        features[:split],
        labels[:split],
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL_FEATURES),
        free_raw_data=False,
    )
    booster = lgb.train(params, train_set, num_boost_round=config.num_trees)
    holdout_scores = booster.predict(features[split:], num_threads=1)
    holdout_labels = labels[split:]
    threshold = best_f1_threshold(holdout_labels, holdout_scores)
    evaluation = {
        "auc": roc_auc(holdout_labels, holdout_scores),
        "pr_auc": average_precision(holdout_labels, holdout_scores),
        **precision_recall_f1(holdout_labels, holdout_scores, threshold),
        "holdout_rows": float(len(holdout_labels)),
    }
    first, last = generated[0].event.event_time, generated[split - 1].event.event_time
    metadata = store.register(
        booster.model_to_string(),
        feature_set_version=FEATURE_SET_VERSION,
        feature_names=list(FEATURE_NAMES),
        threshold=threshold,
        training={
            "source": "synthetic",
            "seed": config.seed,
            "rows": split,
            "fraud_rate": float(labels[:split].mean()),
            "window_start_ms": first,
            "window_end_ms": last,
            "seconds": round(time.perf_counter() - started, 2),
        },
        evaluation=evaluation,
        parent_version=store.aliases().get(CHAMPION),
        num_trees=booster.num_trees(),
        monitoring=training_reference(
            holdout_scores, features[split:, MONITORED_COLUMNS], MONITORED_FEATURES
        ),
    )
    if promote:
        store.set_alias(CHAMPION, metadata.version, by=by)
    progress(
        f"registered version {metadata.version}: ROC AUC {evaluation['auc']:.3f}, "
        f"PR AUC {evaluation['pr_auc']:.3f}, F1 {evaluation['f1']:.3f} at threshold "
        f"{threshold:.3f}, {labels[split:].mean():.2%} fraud held out"
    )
    return metadata
