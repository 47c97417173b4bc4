"""The streams the drift benchmark and the calibration feed to the monitors, seeded.

- ``error_stream``: the prequential error bits (predict, then learn) of a simple online
  classifier (River's logistic regression on standardised inputs) on River's Agrawal or SEA
  stream, whose concept switches at known points, abruptly or gradually (the switch is built
  here: ``ConceptDriftStream`` overflows at width 1 far into a stream);
- ``covariate_stream``: one input feature, standard normal, and a score that depends on it,
  with the feature's mean moved by a fraction of its standard deviation at a known point and the
  concept unchanged;
- ``stationary_*``: the same signals without any change, for the false-alarm rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import linear_model, preprocessing
from river.datasets import synth

#: concepts each synthetic stream visits in turn: Agrawal's classification functions, SEA's
#: variants (picked so that consecutive concepts disagree on many points)
CONCEPTS = {"agrawal": (6, 4, 0, 6, 4), "sea": (2, 3, 2, 3, 2)}
#: the score's log-odds: INTERCEPT + FEATURE_WEIGHT * feature + NOISE_WEIGHT * other inputs
INTERCEPT, FEATURE_WEIGHT, NOISE_WEIGHT = -2.0, 1.0, 1.0
#: error rate of the stationary error stream (the calibration's and the control's)
STATIONARY_ERROR_RATE = 0.2


@dataclass(frozen=True)
class DriftPlan:
    """Where the changes are: ``drifts`` switches every ``spacing`` events after ``warmup``."""

    drifts: int
    spacing: int
    #: events of a switch (the new concept's share grows linearly from the point on); 1 = abrupt
    width: int = 1
    #: events the classifier learns from before the detectors see its errors
    warmup: int = 2_000

    @property
    def events(self) -> int:
        """Events the detectors see."""
        return (self.drifts + 1) * self.spacing

    @property
    def points(self) -> list[int]:
        """Drift points, as positions in what the detectors see."""
        return [self.spacing * (k + 1) for k in range(self.drifts)]


def _concept_at(position: int, plan: DriftPlan, draw: float) -> int:
    """The concept an event at ``position`` comes from, ``draw`` uniform in [0, 1): during a
    gradual switch the new concept's share grows from 0 at the drift point to 1 ``width``
    events later."""
    concept = 0
    for point in plan.points:
        if position < point or draw >= (position - point + 1) / plan.width:
            break
        concept += 1
    return concept


def _source(name: str, concept: int, seed: int) -> Iterator[tuple[dict[str, Any], Any]]:
    if name == "agrawal":
        return iter(synth.Agrawal(classification_function=concept, seed=seed, perturbation=0.05))
    return iter(synth.SEA(variant=concept, seed=seed, noise=0.1))


def error_stream(name: str, plan: DriftPlan, seed: int) -> list[int]:
    """The error bits a logistic regression makes, learning as it goes, on ``name``'s stream."""
    concepts = CONCEPTS[name][: plan.drifts + 1]
    sources = [_source(name, c, seed * 100 + k) for k, c in enumerate(concepts)]
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    rng = np.random.default_rng(seed)
    errors = []
    for position in range(-plan.warmup, plan.events):
        x, y = next(sources[_concept_at(position, plan, float(rng.random()))])
        if position >= 0:
            errors.append(int(model.predict_one(x) != y))
        model.learn_one(x, y)
    return errors


def covariate_stream(
    events: int, shift_at: int, shift_sd: float, seed: int
) -> tuple[list[float], list[float]]:
    """One feature (standard normal, mean moved by ``shift_sd`` from ``shift_at``) and the score
    of each event, whose log-odds depend on the feature and on other inputs that do not move."""
    rng = np.random.default_rng(seed)
    feature = rng.standard_normal(events)
    feature[shift_at:] += shift_sd
    return feature.tolist(), _scores(feature, rng).tolist()


def _scores(feature: np.ndarray[Any, Any], rng: np.random.Generator) -> np.ndarray[Any, Any]:
    log_odds = (
        INTERCEPT + FEATURE_WEIGHT * feature + NOISE_WEIGHT * rng.standard_normal(len(feature))
    )
    return np.asarray(1.0 / (1.0 + np.exp(-log_odds)))


def score_reference() -> tuple[float, float]:
    """Mean and standard deviation of the scores' log-odds with no shift (as a training
    window would give them)."""
    return INTERCEPT, math.hypot(FEATURE_WEIGHT, NOISE_WEIGHT)


def stationary_errors(events: int, seed: int) -> list[int]:
    """Error bits at a fixed rate."""
    rng = np.random.default_rng(seed)
    bits: list[int] = (rng.random(events) < STATIONARY_ERROR_RATE).astype(int).tolist()
    return bits


def stationary_covariates(events: int, seed: int) -> tuple[list[float], list[float]]:
    """Feature values and scores with no shift."""
    return covariate_stream(events, events, 0.0, seed)


def feature_reference(size: int, seed: int) -> list[float]:
    """A reference sample of the feature, as the training data would hold it."""
    sample: list[float] = np.random.default_rng(seed).standard_normal(size).tolist()
    return sample
