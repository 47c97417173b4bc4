"""Train LightGBM on synthetic transactions with the serving feature code; register it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.fit import NUM_LEAVES, BoosterConfig, fit_and_register, training_features
from models.registry import CHAMPION, ModelMetadata, ModelStore
from stream_app.devtools.generator import TransactionGenerator


@dataclass(frozen=True)
class TrainingConfig:
    """How much synthetic data to train on and how big the model is."""

    events: int = 200_000
    seed: int = 1
    fraud_rate: float = 0.01
    num_trees: int = 200
    num_leaves: int = NUM_LEAVES
    holdout_fraction: float = 0.2
    time_scale: float = 600.0  # ~33 h of event time for 200k events: days and nights
    #: event time of the first event (default: the UTC midnight before yesterday's clock)
    start_ms: int | None = None
    #: the generator's cards and terminals (default: ``seed``'s own); recorded in the metadata
    #: so that a stream of the same customers can be generated to score (``population_seed``
    #: of :class:`~stream_app.devtools.generator.TransactionGenerator`)
    population_seed: int | None = None

    @property
    def population(self) -> int:
        """The seed of the population trained on."""
        return self.seed if self.population_seed is None else self.population_seed


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
                seed=config.seed,
                fraud_rate=config.fraud_rate,
                time_scale=config.time_scale,
                start_ms=config.start_ms,
                population_seed=config.population_seed,
            ),
            config.events,
        )
    )
    features = training_features([g.event for g in generated])
    labels = np.fromiter((g.is_fraud for g in generated), dtype=np.float64, count=len(generated))
    split = int(len(generated) * (1.0 - config.holdout_fraction))  # holdout = the latest events
    booster = BoosterConfig(config.num_trees, config.num_leaves, config.seed)
    training = {
        "source": "synthetic",
        "seed": config.seed,
        "population_seed": config.population,
        "window_start_ms": generated[0].event.event_time,
        "window_end_ms": generated[split - 1].event.event_time,
        "generation_seconds": round(time.perf_counter() - started, 2),
    }
    metadata = fit_and_register(
        store, features, labels, split, booster, training, progress
    ).metadata
    if promote:
        store.set_alias(CHAMPION, metadata.version, by=by)
    return metadata


def training_population(metadata: ModelMetadata) -> int | None:
    """The generator population a version was trained on (synthetic training only): streams of
    it are the customers the model knows, as a live stream is."""
    training = metadata.training
    if training.get("source") != "synthetic":
        return None
    population = training.get("population_seed", training.get("seed"))
    return population if isinstance(population, int) else None
