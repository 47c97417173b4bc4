"""Feature computation shared by training and the scoring workers: one code path, as arrays.

Feature set ``fs2`` = the stateless features of one event (``fs1``) followed by the per-card
velocity features computed in event time by ``stream_app.state`` (the worker from its per-partition
state, training by replaying the same code over the event history). A change to the list or to
any computation gets a new ``FEATURE_SET_VERSION`` so models trained on another set are told
apart (and refused by workers).
"""

from __future__ import annotations

import numpy as np

from stream_app.events import CHANNELS, FloatArray, TransactionBatch
from stream_app.state import VELOCITY_FEATURES

FEATURE_SET_VERSION = "fs2"
#: the merchant categories the model knows (codes by position; any other is NaN)
CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "pharmacy",
    "clothing",
    "travel",
    "entertainment",
    "utilities",
    "online_retail",
    "electronics",
    "jewelry",
    "gaming",
    "atm",
    "digital_goods",
)
EVENT_FEATURES: tuple[str, ...] = (
    "amount",
    "log_amount",
    "amount_cents",
    "hour_of_day",
    "day_of_week",
    "is_night",
    "channel",
    "merchant_category",
    "cross_border",
)
FEATURE_NAMES: tuple[str, ...] = EVENT_FEATURES + VELOCITY_FEATURES
#: features LightGBM treats as categories (integer codes, NaN for unknown)
CATEGORICAL_FEATURES: tuple[str, ...] = ("channel", "merchant_category")

_CATEGORY_CODES = {name: float(i) for i, name in enumerate(CATEGORIES)}
_CHANNEL_CODES = {name: float(i) for i, name in enumerate(CHANNELS)}
_MS_PER_HOUR = 3_600_000
_MS_PER_DAY = 24 * _MS_PER_HOUR


def encode_categories(values: list[str], codes: dict[str, float]) -> FloatArray:
    """Integer codes for known values, NaN for unknown ones (LightGBM reads NaN as missing).

    >>> encode_categories(["pos", "atm", "teleport"], _CHANNEL_CODES).tolist()
    [0.0, 2.0, nan]
    """
    nan = float("nan")
    return np.fromiter((codes.get(v, nan) for v in values), dtype=np.float64, count=len(values))


def hour_of_day(event_time_ms: np.ndarray) -> FloatArray:
    """UTC hour of day, 0..23.

    >>> hour_of_day(np.array([0, 5 * 3_600_000 + 1, 86_400_000 - 1])).tolist()
    [0.0, 5.0, 23.0]
    """
    return ((event_time_ms % _MS_PER_DAY) // _MS_PER_HOUR).astype(np.float64)


def day_of_week(event_time_ms: np.ndarray) -> FloatArray:
    """Monday = 0 .. Sunday = 6 (1970-01-01 was a Thursday).

    >>> day_of_week(np.array([0, 4 * 86_400_000])).tolist()
    [3.0, 0.0]
    """
    return ((event_time_ms // _MS_PER_DAY + 3) % 7).astype(np.float64)


def compute_features(batch: TransactionBatch, velocity: FloatArray) -> FloatArray:
    """The feature matrix (events x ``FEATURE_NAMES``) of a batch, float64, C order.

    ``velocity`` holds the batch's ``VELOCITY_FEATURES`` (from ``stream_app.state``), row-aligned.
    """
    if velocity.shape != (len(batch), len(VELOCITY_FEATURES)):
        raise ValueError(f"velocity features of shape {velocity.shape} for {len(batch)} events")
    hours = hour_of_day(batch.event_time)
    matrix = np.empty((len(batch), len(FEATURE_NAMES)), dtype=np.float64)
    matrix[:, 0] = batch.amount
    matrix[:, 1] = np.log1p(batch.amount)
    matrix[:, 2] = np.round(batch.amount * 100.0) % 100.0
    matrix[:, 3] = hours
    matrix[:, 4] = day_of_week(batch.event_time)
    matrix[:, 5] = hours < 6.0
    matrix[:, 6] = encode_categories(batch.channel, _CHANNEL_CODES)
    matrix[:, 7] = encode_categories(batch.merchant_category, _CATEGORY_CODES)
    matrix[:, 8] = [c != m for c, m in zip(batch.card_country, batch.merchant_country, strict=True)]
    matrix[:, len(EVENT_FEATURES) :] = velocity
    return matrix
