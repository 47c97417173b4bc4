"""A model is proven in a child process: one that aborts LightGBM aborts the child only."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from models.verify import check_model_text
from stream_app.errors import ModelError

FEATURES = 5


@pytest.fixture(scope="module")
def model_text() -> str:
    rng = np.random.default_rng(3)
    x = rng.random((300, FEATURES))
    params = {"verbose": -1, "num_leaves": 7, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(x, (x[:, 0] > 0.5).astype(int)), 3).model_to_string()


def without_first_num_leaves(text: str) -> str:
    """A text that makes LightGBM abort its process ([Fatal] Model format error, terminate)."""
    lines = text.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("num_leaves="))
    return "".join(lines[:first] + lines[first + 1 :])


def test_a_good_model_passes(model_text: str) -> None:
    check_model_text(model_text, FEATURES)


def test_a_model_that_aborts_its_loader_is_refused_and_this_process_lives(model_text) -> None:
    with pytest.raises(ModelError, match=r"exited with -6"):  # SIGABRT, in the child only
        check_model_text(without_first_num_leaves(model_text), FEATURES)


@pytest.mark.parametrize(
    ("text", "features", "reason"),
    [
        ("this is not a LightGBM model\n", FEATURES, "LightGBMError"),
        (None, FEATURES + 1, f"has {FEATURES} features, {FEATURES + 1} expected"),
    ],
)
def test_unloadable_or_mismatched_models_are_refused_with_the_reason(
    model_text: str, text: str | None, features: int, reason: str
) -> None:
    with pytest.raises(ModelError, match=reason):
        check_model_text(text or model_text, features)
