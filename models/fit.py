"""LightGBM on labelled feature rows, evaluated on a later held-out slice, then registered.

The one trainer of the project: ``stream-app models train`` feeds it synthetic transactions
(:mod:`models.train`), the retraining job the labelled window it reads from the warehouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from models.evaluation import average_precision, best_f1_threshold, precision_recall_f1, roc_auc
from models.registry import CHAMPION, ModelMetadata, ModelStore
from monitors.reference import training_reference
from stream_app.events import Transaction, TransactionBatch
from stream_app.features import (
    CATEGORICAL_FEATURES,
    EVENT_FEATURES,
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    compute_features,
)
from stream_app.state import replay_velocity_features

FloatArray = npt.NDArray[np.float64]

#: the features the drift monitors watch: the event's own. Not the calendar (it follows the
#: clock of the day, not a population) nor the per-card velocity (it depends on how much of each
#: card's history a worker has seen, and on the stream's pace): both move on a stationary stream.
MONITORED_FEATURES = tuple(
    name for name in EVENT_FEATURES if name not in ("hour_of_day", "day_of_week", "is_night")
)
MONITORED_COLUMNS = [FEATURE_NAMES.index(name) for name in MONITORED_FEATURES]


#: leaves per tree: 15 rather than LightGBM's 31, whose leaf-wise trees reach depth 18 here; the
#: held-out ROC and PR AUC stay within noise of 31 leaves for a quarter less predict time and a
#: third of the TreeSHAP time of an alert's contributions (docs/benchmarks.md, "Where the worker's
#: time goes")
NUM_LEAVES = 15


@dataclass(frozen=True)
class BoosterConfig:
    """The model's size and how it is trained."""

    num_trees: int = 200
    num_leaves: int = NUM_LEAVES
    seed: int = 1
    num_threads: int = 2


@dataclass(frozen=True)
class FittedModel:
    """A registered version and its scores on the held-out slice."""

    metadata: ModelMetadata
    holdout_scores: FloatArray


def training_features(events: Sequence[Transaction]) -> FloatArray:
    """The feature matrix training learns from: the per-card features replay the serving code
    over the history, in production (consumption) order."""
    return batch_features(TransactionBatch.from_transactions(list(events)))


def batch_features(batch: TransactionBatch) -> FloatArray:
    """The serving feature code over ``batch``, its rows in consumption order."""
    velocity = replay_velocity_features(
        batch.card_id, batch.merchant_id, batch.amount, batch.event_time
    )
    return compute_features(batch, velocity)


def fit_and_register(
    store: ModelStore,
    features: FloatArray,
    labels: FloatArray,
    split: int,
    config: BoosterConfig,
    training: dict[str, Any],
    progress: Callable[[str], None] = lambda _: None,
) -> FittedModel:
    """Train on the rows before ``split``, evaluate on the rows from it (the later ones: never
    shuffled), register with ``training`` (plus the fraud rate and the seconds taken)."""
    started = time.perf_counter()
    params: dict[str, Any] = {
        "objective": "binary",
        "num_leaves": config.num_leaves,
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "num_threads": config.num_threads,
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
    holdout_scores = np.asarray(booster.predict(features[split:], num_threads=1), np.float64)
    holdout_labels = labels[split:]
    threshold = best_f1_threshold(holdout_labels, holdout_scores)
    evaluation = {
        "auc": roc_auc(holdout_labels, holdout_scores),
        "pr_auc": average_precision(holdout_labels, holdout_scores),
        **precision_recall_f1(holdout_labels, holdout_scores, threshold),
        "holdout_rows": float(len(holdout_labels)),
    }
    metadata = store.register(
        booster.model_to_string(),
        feature_set_version=FEATURE_SET_VERSION,
        feature_names=list(FEATURE_NAMES),
        threshold=threshold,
        training={
            **training,
            "rows": split,
            "fraud_rate": float(labels[:split].mean()),
            "seconds": round(time.perf_counter() - started, 2),
        },
        evaluation=evaluation,
        parent_version=store.aliases().get(CHAMPION),
        num_trees=booster.num_trees(),
        monitoring=training_reference(
            holdout_scores, features[split:, MONITORED_COLUMNS], MONITORED_FEATURES
        ),
    )
    progress(
        f"registered version {metadata.version}: ROC AUC {evaluation['auc']:.3f}, "
        f"PR AUC {evaluation['pr_auc']:.3f}, F1 {evaluation['f1']:.3f} at threshold "
        f"{threshold:.3f}, {holdout_labels.mean():.2%} fraud held out"
    )
    return FittedModel(metadata, holdout_scores)
