"""The training reference of the label-free monitors, stored with a model version as JSON.

At training, the held-out slice's scores and features give what the monitors compare the live
stream with: the mean and standard deviation of the score log-odds (for
:class:`~monitors.scores.ScoreMonitor`) and, per feature, bin edges at its deciles with the share
of the slice in each bin (for :class:`~monitors.features.PsiMonitor`). Missing values (NaN) are
left out. Deciles that coincide (a binary or categorical feature) are merged, and an edge that
would leave a bin empty is dropped, so that every bin has a positive expected share; a feature
left with a single bin (a constant) is not monitored.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> features = np.column_stack([rng.normal(size=5_000), rng.integers(0, 2, 5_000)])
>>> ref = training_reference(rng.uniform(0.01, 0.99, 5_000), features, ["x", "flag"])
>>> len(ref["features"]["x"]["edges"]), ref["features"]["flag"]["edges"]
(9, [1.0])
>>> sorted(feature_monitors(ref)), score_monitor(ref).kind
(['flag', 'x'], 'page_hinkley_log_odds')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from monitors.base import JSONValue, MonitorState, MonitorStateError, floats, number
from monitors.features import BINS, PsiMonitor
from monitors.scores import ScoreMonitor, log_odds_array

FloatArray = npt.NDArray[np.float64]


def feature_bins(sample: npt.ArrayLike) -> tuple[list[float], list[float]] | None:
    """Edges at the sample's deciles (NaN left out) and the share of the sample in each bin
    (``bisect_right`` bins, as :class:`PsiMonitor` counts them); ``None`` if one bin is left.

    >>> feature_bins([0.0] * 5 + [1.0] * 5)
    ([0.5], [0.5, 0.5])
    >>> feature_bins([2.0, 2.0, float("nan")]) is None
    True
    """
    values = np.sort(np.asarray(sample, dtype=np.float64))
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    edges: list[float] = []
    for edge in np.unique(np.quantile(values, np.arange(1, BINS) / BINS)).tolist():
        below = np.searchsorted(values, edge, side="left")  # values of the bin this edge closes
        closed = below - (np.searchsorted(values, edges[-1], side="left") if edges else 0)
        if closed > 0 and below < len(values):
            edges.append(edge)
    if not edges:
        return None
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return edges, (counts / len(values)).tolist()


def training_reference(
    scores: npt.ArrayLike, features: FloatArray, names: Sequence[str]
) -> MonitorState:
    """The JSON reference of a held-out slice: its scores and its feature matrix (columns in
    ``names`` order)."""
    z = log_odds_array(scores)
    bins: dict[str, JSONValue] = {}
    for column, name in enumerate(names):
        found = feature_bins(features[:, column])
        if found is not None:
            edges, expected = found
            bins[name] = {"edges": list[JSONValue](edges), "expected": list[JSONValue](expected)}
    return {
        "rows": len(z),
        "log_odds_mean": float(z.mean()),
        "log_odds_std": float(z.std()),
        "features": bins,
    }


def score_monitor(reference: MonitorState) -> ScoreMonitor:
    """A fresh score monitor against ``reference``."""
    return ScoreMonitor(number(reference, "log_odds_mean"), number(reference, "log_odds_std"))


def feature_monitors(reference: MonitorState) -> dict[str, PsiMonitor]:
    """A fresh PSI monitor per feature of ``reference``."""
    features = reference.get("features")
    if not isinstance(features, dict):
        raise MonitorStateError(f"features: expected an object, got {features!r}")
    monitors = {}
    for name, bins in features.items():
        if not isinstance(bins, dict):
            raise MonitorStateError(f"features.{name}: expected an object, got {bins!r}")
        monitors[name] = PsiMonitor(floats(bins, "edges"), floats(bins, "expected"))
    return monitors
