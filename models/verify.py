"""Prove that a LightGBM text model loads and scores, in a child process.

A malformed model whose checksum matches can make LightGBM abort the process that loads it
(``[Fatal] Model format error``, then ``terminate``, exit 134): no Python exception to catch. So
the text is first loaded by a short-lived child (``python -m models.verify N`` with the text on
stdin), which scores a probe row of ``N`` zeros; only if it exits 0 may a process load it itself.
"""

from __future__ import annotations

import subprocess
import sys

from stream_app.errors import ModelError


def check_model_text(text: str, num_features: int, timeout_s: float = 60.0) -> None:
    """Return if ``text`` loads and scores a probe row in a child process; else ``ModelError``
    with the child's last line of error output."""
    try:
        result = subprocess.run(  # noqa: S603  # our own interpreter and module
            [sys.executable, "-m", "models.verify", str(num_features)],
            input=text.encode(),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ModelError(f"not loaded and scored within {timeout_s:g}s") from None
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        raise ModelError(
            f"does not load and score (a child process exited with {result.returncode}): "
            + (lines[-1] if lines else "no error output")
        )


def _probe(num_features: int) -> None:  # pragma: no cover  # runs in the child process
    import lightgbm as lgb
    import numpy as np

    booster = lgb.Booster(model_str=sys.stdin.read())
    if booster.num_feature() != num_features:
        sys.exit(f"the model has {booster.num_feature()} features, {num_features} expected")
    scores = booster.predict(np.zeros((1, num_features)), num_threads=1)
    if not np.all(np.isfinite(scores)):
        sys.exit(f"the probe row scored {scores}")


if __name__ == "__main__":  # pragma: no cover
    _probe(int(sys.argv[1]))
