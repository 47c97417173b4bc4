"""LightGBM scores through its C API's single-row fast path, set up once per model.

``Booster.predict`` builds everything again on every call: a parameter string parsed, a
predictor constructed, the numpy input checked and converted (~0.1 ms per call here, a batch of
50 rows paying as much again as its own rows). ``LGBM_BoosterPredictForMatSingleRowFastInit``
does that set-up once; each row is then one call into the same per-row predict function that
``Booster.predict`` runs, so the scores are bit-identical (``tests/unit/test_row_predictor.py``).
"""

from __future__ import annotations

import ctypes
import threading
import weakref

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _safe_call
from lightgbm.libpath import _LIB

from stream_app.events import FloatArray

#: LightGBM's ``C_API_PREDICT_NORMAL`` (probabilities) and ``C_API_DTYPE_FLOAT64``
_PREDICT_NORMAL, _FLOAT64 = 0, 1


class RowPredictor:
    """Probabilities of a booster's rows, one thread, the set-up done at construction."""

    def __init__(self, booster: lgb.Booster) -> None:
        self._booster = booster  # the fast config refers to its handle: keep it alive
        self.features = int(booster.num_feature())
        config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(booster.best_iteration),  # as Booster.predict: <= 0 is all
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(self.features),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(config),
            )
        )
        self._config = config
        self._length = ctypes.c_int64(0)
        self._lock = threading.Lock()  # one config, one output length: one caller at a time
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, config)

    def predict(self, features: FloatArray) -> FloatArray:
        """The probability of each row of ``features`` (rows x the model's features)."""
        rows = np.ascontiguousarray(features, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.features:
            raise ValueError(f"features of shape {rows.shape}, the model has {self.features}")
        scores: FloatArray = np.empty(len(rows), dtype=np.float64)
        start, stride, out = rows.ctypes.data, rows.strides[0], scores.ctypes.data
        predict, config = _LIB.LGBM_BoosterPredictForMatSingleRowFast, self._config
        with self._lock:
            length = ctypes.byref(self._length)
            for row in range(len(rows)):
                _safe_call(
                    predict(
                        config,
                        ctypes.c_void_p(start + row * stride),
                        length,
                        ctypes.c_void_p(out + 8 * row),
                    )
                )
        return scores
