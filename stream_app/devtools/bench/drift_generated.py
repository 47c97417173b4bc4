"""The project's generator in the drift benchmark: its drift schedules scored by a champion.

A small champion is trained once per benchmark run with the project's training code
(:func:`models.train.train_model`, into a temporary registry). Each seed's stream is the
generator with a built-in drift schedule (``drift_schedule``), scored by that champion with the
serving feature code; the drift point is the one the generator reports (``drift_points()``). The
monitors see what they would see in production: the score (Page-Hinkley on its log-odds against
the champion's training reference), one feature (PSI against the reference's bins) and the error
bits of the champion's decisions (1 where the decision at its threshold disagrees with the
ground truth; in production that is what joined chargebacks give).

Every stream is of the champion's training population (the generator's ``population_seed``):
the cards and terminals it was trained on, other events. The drift scenarios' streams start
where the champion's held-out slice (its monitoring reference) starts and run at the generator's
default time scale (60 s of event time per 1,000 events), so they stay within the hours of day
of the reference. The stationary control (schedule ``none``) runs at the training's time scale
(600 s per 1,000 events) through a day and a night, split into input partitions by card as the
worker's monitors read it (:func:`stationary_day`).
"""

from __future__ import annotations

import itertools
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from models.fit import training_features
from models.registry import FileModelStore
from models.train import TrainingConfig, train_model
from monitors.base import MonitorState
from monitors.reference import feature_monitors
from stream_app.devtools.generator import (
    LabelledTransaction,
    TransactionGenerator,
    drift_schedule,
)
from stream_app.devtools.generator.stream import DAY_MS
from stream_app.features import FEATURE_NAMES

FloatArray = npt.NDArray[np.float64]
#: the champion's training data: its seed (the streams use ``STREAM_SEED_OFFSET + seed``) and
#: the day it starts, fixed so that the calendar features do not depend on the day of the run
CHAMPION_SEED = 77
CHAMPION_START_MS = 1_800_000_000_000 // DAY_MS * DAY_MS
STREAM_SEED_OFFSET = 1_000
#: event-time seconds per wall second of the drift streams (the generator's default)
STREAM_TIME_SCALE = 60.0
#: the feature the PSI monitor watches (a covariate shift moves the amounts)
WATCHED_FEATURE = "amount"
#: input partitions of the stationary control: a worker keeps monitors per partition
PARTITIONS = 4
#: the stationary control's streams start this far apart in event time (seed 0 where the champion's
#: held-out slice starts): ten seeds start 2.4 hours apart, round the clock, as a fresh worker may
CONTROL_START_STEP_MS = DAY_MS // 10


@dataclass(frozen=True)
class Champion:
    """The model the generated streams are scored with, and what its monitors compare with."""

    booster: lgb.Booster
    threshold: float
    reference: MonitorState
    #: event time where its held-out slice, the monitoring reference, starts
    holdout_start_ms: int


@dataclass(frozen=True)
class GeneratedStream:
    """One seed's stream as the monitors see it, and where its drift point is."""

    scores: list[float]
    feature: list[float]
    errors: list[int]
    #: the drift point (none in a stream without a schedule)
    points: list[int]


def train_champion(events: int) -> Champion:
    """A small champion (``events`` synthetic events, 50 trees), trained with the project's code."""
    config = TrainingConfig(
        events=events, seed=CHAMPION_SEED, num_trees=50, start_ms=CHAMPION_START_MS
    )
    with tempfile.TemporaryDirectory() as directory:
        store = FileModelStore(Path(directory))
        metadata = train_model(store, config, promote=False, by="stream-app bench drift")
        booster = lgb.Booster(model_str=store.load_text(metadata.version))
    return Champion(
        booster, metadata.threshold, metadata.monitoring, int(metadata.training["window_end_ms"])
    )


def _scored(
    champion: Champion, generator: TransactionGenerator, events: int
) -> tuple[list[LabelledTransaction], FloatArray, FloatArray]:
    """The generator's first ``events`` events, their features and the champion's scores."""
    labelled = list(itertools.islice(generator, events))
    features = training_features([g.event for g in labelled])
    scores = np.asarray(champion.booster.predict(features, num_threads=1), dtype=np.float64)
    return labelled, features, scores


def _generator(
    champion: Champion, scenario: str, events: int, seed: int, time_scale: float, later_ms: int = 0
) -> TransactionGenerator:
    return TransactionGenerator(
        seed=STREAM_SEED_OFFSET + seed,
        start_ms=champion.holdout_start_ms + later_ms,
        time_scale=time_scale,
        drift=drift_schedule(scenario, events),
        population_seed=CHAMPION_SEED,
    )


def generated_stream(
    champion: Champion, scenario: str, events: int, seed: int, time_scale: float = STREAM_TIME_SCALE
) -> GeneratedStream:
    """``events`` events of the generator under ``scenario``'s schedule, scored by ``champion``."""
    generator = _generator(champion, scenario, events, seed, time_scale)
    points = [point.index for point in generator.drift_points()]
    labelled, features, scores = _scored(champion, generator, events)
    truth = np.fromiter((g.is_fraud for g in labelled), dtype=bool, count=len(labelled))
    errors = (scores >= champion.threshold) != truth
    column = features[:, FEATURE_NAMES.index(WATCHED_FEATURE)]
    return GeneratedStream(scores.tolist(), column.tolist(), errors.astype(int).tolist(), points)


def partition_of(card_id: str, partitions: int = PARTITIONS) -> int:
    """The input partition of a card's events (CRC32 of the key, as librdkafka's default
    partitioner places a keyed record)."""
    return zlib.crc32(card_id.encode()) % partitions


def stationary_day(
    champion: Champion, events: int, seed: int, time_scale: float
) -> dict[str, list[FloatArray]]:
    """A stream with no drift scored by ``champion``, as each input partition's monitors read
    it: per signal (``score`` and every monitored feature of the reference), one array of values
    per partition, in stream order. Seed ``k``'s stream starts ``k`` steps of
    :data:`CONTROL_START_STEP_MS` after the held-out slice, the card state cold."""
    later = seed * CONTROL_START_STEP_MS % DAY_MS
    generator = _generator(champion, "none", events, seed, time_scale, later)
    labelled, features, scores = _scored(champion, generator, events)
    partition = np.fromiter(
        (partition_of(g.event.card_id) for g in labelled), dtype=np.int64, count=len(labelled)
    )
    rows = [np.flatnonzero(partition == p) for p in range(PARTITIONS)]
    monitored = feature_monitors(champion.reference)
    signals = {"score": scores} | {
        name: features[:, FEATURE_NAMES.index(name)] for name in monitored
    }
    return {name: [values[r] for r in rows] for name, values in signals.items()}
