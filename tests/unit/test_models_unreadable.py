"""A registry file damaged on disk (a bad sector, a half-copied backup, a hand edit) is a
``ModelError`` naming the file, never another exception: a champion that cannot be read gives way
to the previous one as a corrupted model does, instead of stopping the worker at every start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from models.loader import ModelLoader
from models.registry import CHAMPION, FileModelStore, ModelMetadata
from stream_app.control.modelset import initial_models
from stream_app.errors import ModelError


def _store_with_a_second_champion(
    trained_store: tuple[FileModelStore, ModelMetadata], directory: Path
) -> FileModelStore:
    """The trained model registered twice in a store of its own: version 1 champion, then
    version 2 promoted over it."""
    trained, model = trained_store
    store = FileModelStore(directory)
    for version in ("1", "2"):
        store.register(
            trained.load_text(model.version),
            feature_set_version=model.feature_set_version,
            feature_names=model.feature_names,
            threshold=model.threshold,
            training=model.training,
            evaluation=model.evaluation,
        )
        store.set_alias(CHAMPION, version, by="test")
    return store


DAMAGE: dict[str, Callable[[Path], None]] = {
    "metadata-not-json": lambda v: (v / "metadata.json").write_bytes(b"{\x00garbage"),
    "metadata-another-shape": lambda v: (v / "metadata.json").write_text('{"version": 2}'),
    "metadata-empty": lambda v: (v / "metadata.json").write_bytes(b""),
    "model-not-utf8": lambda v: (v / "model.txt").write_bytes(b"tree\n\xff\xfe\x00"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_champion_damaged_on_disk_gives_way_to_the_previous_one(trained_store, tmp_path, damage):
    store = _store_with_a_second_champion(trained_store, tmp_path / "models")
    DAMAGE[damage](tmp_path / "models" / "2")
    with pytest.raises(ModelError, match=r"model 2: (metadata\.json|model\.txt) cannot be read"):
        store.load_text("2")
    models, refusals = initial_models(ModelLoader(store))
    assert models.champion.version == "1"
    assert refusals[-1] == "falling back to model 1, the last champion that loads"


@pytest.mark.parametrize("content", [b"\xff\xfe", b"not json", b"[]", b'{"current": []}'], ids=str)
def test_an_unreadable_aliases_file_is_a_model_error_that_names_it(
    trained_store, tmp_path, content
):
    store = _store_with_a_second_champion(trained_store, tmp_path / "models")
    (tmp_path / "models" / "aliases.json").write_bytes(content)
    with pytest.raises(ModelError, match=r"aliases\.json"):
        initial_models(ModelLoader(store))
