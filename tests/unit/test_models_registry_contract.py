"""Every model store obeys the same contract: versions, checksums, aliases and their history."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from models.registry import CHALLENGER, CHAMPION, FileModelStore, ModelStore, sha256_text
from stream_app.errors import ModelError
from tests.unit.support import concrete_subclasses


@dataclass(frozen=True)
class StoreKit:
    """How the contract builds a store and reaches behind it (to tamper, to read history)."""

    make: Callable[[Path], ModelStore]
    tamper: Callable[[Path, str], None]
    alias_history: Callable[[Path], list[dict[str, Any]]]


def _tamper_file(directory: Path, version: str) -> None:
    path = directory / version / "model.txt"
    path.write_text(path.read_text() + "tree\n")


def _file_history(directory: Path) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = json.loads((directory / "aliases.json").read_text())["history"]
    return history


KITS: dict[type, StoreKit] = {
    FileModelStore: StoreKit(FileModelStore, _tamper_file, _file_history),
}

STORES = concrete_subclasses(ModelStore)

REGISTRATION: dict[str, Any] = {
    "feature_set_version": "fs1",
    "feature_names": ["a", "b"],
    "threshold": 0.42,
    "training": {"seed": 1},
    "evaluation": {"auc": 0.9},
}


def test_every_store_has_a_kit() -> None:
    assert FileModelStore in STORES
    missing = [c.__qualname__ for c in STORES if c not in KITS]
    assert not missing, f"add these model stores to KITS so they go through the contract: {missing}"


@pytest.fixture(params=STORES, ids=lambda c: c.__name__)
def kit_and_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[StoreKit, ModelStore]:
    kit = KITS[request.param]
    return kit, kit.make(tmp_path)


def test_register_versions_metadata_and_text(
    kit_and_store: tuple[StoreKit, ModelStore],
) -> None:
    _, store = kit_and_store
    assert store.versions() == []
    first = store.register("model one", **REGISTRATION, num_trees=3)
    second = store.register("model two", **REGISTRATION, parent_version=first.version)
    assert (first.version, second.version) == ("1", "2")
    assert [m.version for m in store.versions()] == ["1", "2"]
    assert store.metadata("1") == first
    assert store.metadata("2").parent_version == "1"
    assert first.sha256 == sha256_text("model one")
    assert first.num_trees == 3
    assert first.threshold == pytest.approx(0.42)
    assert first.evaluation == {"auc": 0.9}
    assert store.load_text("1") == "model one"
    assert store.load_text("2") == "model two"


def test_tampered_text_is_refused(
    kit_and_store: tuple[StoreKit, ModelStore], tmp_path: Path
) -> None:
    kit, store = kit_and_store
    store.register("model one", **REGISTRATION)
    kit.tamper(tmp_path, "1")
    with pytest.raises(ModelError, match="checksum"):
        store.load_text("1")


def test_aliases_and_their_history(
    kit_and_store: tuple[StoreKit, ModelStore], tmp_path: Path
) -> None:
    kit, store = kit_and_store
    assert store.aliases() == {}
    for text in ("one", "two"):
        store.register(text, **REGISTRATION)
    store.set_alias(CHAMPION, "1", by="test")
    store.set_alias(CHALLENGER, "2", by="test")
    store.set_alias(CHAMPION, "2", by="promoter")
    store.set_alias(CHALLENGER, None, by="promoter")
    assert store.aliases() == {CHAMPION: "2"}
    assert store.resolve(CHAMPION).version == "2"
    assert store.resolve("1").version == "1"
    history = [(h["alias"], h["from"], h["to"], h["by"]) for h in kit.alias_history(tmp_path)]
    assert history == [
        (CHAMPION, None, "1", "test"),
        (CHALLENGER, None, "2", "test"),
        (CHAMPION, "1", "2", "promoter"),
        (CHALLENGER, "2", None, "promoter"),
    ]


@pytest.mark.parametrize("version", ["3", "0", "-1", "champion", "../1", "1/../1", ""])
def test_unknown_versions_are_model_errors(
    kit_and_store: tuple[StoreKit, ModelStore], version: str
) -> None:
    _, store = kit_and_store
    store.register("one", **REGISTRATION)
    store.register("two", **REGISTRATION)
    with pytest.raises(ModelError):
        store.metadata(version)
    with pytest.raises(ModelError):
        store.load_text(version)
    with pytest.raises(ModelError):
        store.set_alias(CHAMPION, version, by="test")
    assert store.aliases() == {}
    with pytest.raises(ModelError):
        store.resolve(CHAMPION)  # no champion yet: resolves to the name, which is no version
