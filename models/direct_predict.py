"""LightGBM scores through one call of its C API, the arguments prepared once per model.

``Booster.predict`` rebuilds its arguments in Python on every call (the parameters copied and
turned into a string, a predictor object created, the class count and output size asked of the
library, the input checked and converted): ~50 µs per call here, as much as five rows of a
batch. :class:`DirectPredictor` calls ``LGBM_BoosterPredictForMat``, the function
``Booster.predict`` ends in, with the same arguments, so the scores are bit-identical
(``tests/unit/test_direct_predict.py``). (LightGBM's single-row fast path, set up once per
model, was measured too: it saves the library's own set-up per call but costs ~2 µs more per
row, a loss from batches of ~40 rows on.)
"""

from __future__ import annotations

import ctypes

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _safe_call
from lightgbm.libpath import _LIB

from stream_app.errors import ModelError
from stream_app.events import FloatArray

#: LightGBM's ``C_API_DTYPE_FLOAT64`` and ``C_API_PREDICT_NORMAL`` (probabilities)
_FLOAT64, _PREDICT_NORMAL = 1, 0


class DirectPredictor:
    """Probabilities of a binary booster's rows, one thread per call."""

    def __init__(self, booster: lgb.Booster) -> None:
        if booster.num_model_per_iteration() != 1:
            raise ModelError("only a binary model scores one probability per row")
        self._booster = booster  # owns the handle
        self.features = int(booster.num_feature())
        self._iterations = ctypes.c_int(booster.best_iteration)  # as Booster.predict: <= 0 all
        self._parameters = ctypes.c_char_p(b"num_threads=1")

    def predict(self, features: FloatArray) -> FloatArray:
        """The probability of each row of ``features`` (rows x the model's features)."""
        rows = np.ascontiguousarray(features, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.features:
            raise ValueError(f"features of shape {rows.shape}, the model has {self.features}")
        scores: FloatArray = np.empty(len(rows), dtype=np.float64)
        if not len(rows):
            return scores
        written = ctypes.c_int64(0)
        _safe_call(
            _LIB.LGBM_BoosterPredictForMat(
                self._booster._handle,
                ctypes.c_void_p(rows.ctypes.data),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(len(rows)),
                ctypes.c_int32(self.features),
                ctypes.c_int(1),  # row-major
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                self._iterations,
                self._parameters,
                ctypes.byref(written),
                ctypes.c_void_p(scores.ctypes.data),
            )
        )
        if written.value != len(rows):
            raise ModelError(f"LightGBM wrote {written.value} scores for {len(rows)} rows")
        return scores
