"""Model versions and aliases behind a store interface; the model directory is the default store.

A version is a LightGBM *text* model plus :class:`ModelMetadata`. Loading verifies the SHA-256
recorded at registration; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from stream_app.errors import ModelError

CHAMPION = "champion"
CHALLENGER = "challenger"


class ModelMetadata(msgspec.Struct, frozen=True):
    """What is known about one registered model version."""

    version: str
    created_at: str
    feature_set_version: str
    feature_names: list[str]
    threshold: float
    sha256: str
    training: dict[str, Any] = msgspec.field(default_factory=dict)
    evaluation: dict[str, float] = msgspec.field(default_factory=dict)
    parent_version: str | None = None
    num_trees: int = 0
    monitoring: dict[str, Any] = msgspec.field(default_factory=dict)
    """the drift monitors' training reference (``monitors.reference``); empty: none (a version
    registered before the monitors, which is scored unmonitored)"""


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a model's UTF-8 text.

    >>> sha256_text("tree")[:12]
    'dc9c5edb8b2d'
    """
    return hashlib.sha256(text.encode()).hexdigest()


class ModelDigests(msgspec.Struct, frozen=True):
    """What a signed command pins of a version: the SHA-256 of its text and of its metadata
    (threshold, feature set, the text's SHA-256 and the rest, as sorted JSON)."""

    model: str
    metadata: str

    @classmethod
    def of(cls, metadata: ModelMetadata) -> ModelDigests:
        encoded = msgspec.json.encode(metadata, order="sorted")
        return cls(metadata.sha256, hashlib.sha256(encoded).hexdigest())


class ModelStore(ABC):
    """Where model versions live. Another store (object storage) implements the same methods."""

    @abstractmethod
    def register(
        self,
        model_text: str,
        *,
        feature_set_version: str,
        feature_names: list[str],
        threshold: float,
        training: dict[str, Any],
        evaluation: dict[str, float],
        parent_version: str | None = None,
        num_trees: int = 0,
        monitoring: dict[str, Any] | None = None,
    ) -> ModelMetadata:
        """Store a new version and return its metadata (version ids are 1, 2, 3, ...)."""

    @abstractmethod
    def versions(self) -> list[ModelMetadata]:
        """Every registered version, oldest first."""

    @abstractmethod
    def metadata(self, version: str) -> ModelMetadata:
        """One version's metadata; ``ModelError`` if unknown."""

    @abstractmethod
    def load_text(self, version: str) -> str:
        """The model text, after checking it against the recorded SHA-256."""

    @abstractmethod
    def aliases(self) -> dict[str, str]:
        """Current alias → version."""

    @abstractmethod
    def set_alias(self, alias: str, version: str | None, *, by: str) -> None:
        """Point ``alias`` at ``version`` (``None`` clears it); the change is kept as history."""

    @abstractmethod
    def alias_history(self) -> list[dict[str, Any]]:
        """Every alias change, oldest first: ``alias``, ``from``, ``to``, ``by``, ``at``."""

    def resolve(self, alias_or_version: str) -> ModelMetadata:
        """Metadata for an alias (``champion``) or a version id."""
        version = self.aliases().get(alias_or_version, alias_or_version)
        return self.metadata(version)

    def previous_champion(self) -> str | None:
        """The champion before the current one, from the alias history."""
        for change in reversed(self.alias_history()):
            if change["alias"] == CHAMPION and change["from"] is not None:
                return str(change["from"])
        return None


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


class FileModelStore(ModelStore):
    """Versions as ``<dir>/<n>/model.txt`` + ``metadata.json``; aliases in ``aliases.json``."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        self._aliases_file = directory / "aliases.json"

    def register(
        self,
        model_text: str,
        *,
        feature_set_version: str,
        feature_names: list[str],
        threshold: float,
        training: dict[str, Any],
        evaluation: dict[str, float],
        parent_version: str | None = None,
        num_trees: int = 0,
        monitoring: dict[str, Any] | None = None,
    ) -> ModelMetadata:
        numbers = [int(m.version) for m in self.versions()]
        version = str(max(numbers, default=0) + 1)
        metadata = ModelMetadata(
            version=version,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            feature_set_version=feature_set_version,
            feature_names=feature_names,
            threshold=threshold,
            sha256=sha256_text(model_text),
            training=training,
            evaluation=evaluation,
            parent_version=parent_version,
            num_trees=num_trees,
            monitoring=monitoring or {},
        )
        target = self._dir / version
        target.mkdir()
        _write_atomically(target / "model.txt", model_text)
        _write_atomically(
            target / "metadata.json", msgspec.json.format(msgspec.json.encode(metadata)).decode()
        )
        return metadata

    def versions(self) -> list[ModelMetadata]:
        found = [
            p.parent.name for p in self._dir.glob("*/metadata.json") if p.parent.name.isdigit()
        ]
        return [self.metadata(v) for v in sorted(found, key=int)]

    def metadata(self, version: str) -> ModelMetadata:
        path = self._dir / version / "metadata.json"
        if not version.isdigit() or not path.is_file():
            raise ModelError(f"unknown model version {version!r}")
        try:
            return msgspec.json.decode(path.read_bytes(), type=ModelMetadata)
        except (OSError, msgspec.DecodeError) as exc:  # ValidationError is a DecodeError
            raise ModelError(f"model {version}: {path.name} cannot be read: {exc}") from None

    def load_text(self, version: str) -> str:
        expected = self.metadata(version).sha256
        path = self._dir / version / "model.txt"
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"model {version}: {path.name} cannot be read: {exc}") from None
        actual = sha256_text(text)
        if actual != expected:
            raise ModelError(
                f"model {version}: checksum mismatch ({actual[:12]} != {expected[:12]})"
            )
        return text

    def _alias_document(self) -> dict[str, Any]:
        if not self._aliases_file.is_file():
            return {"current": {}, "history": []}
        try:
            document = json.loads(self._aliases_file.read_text())
        except (OSError, ValueError) as exc:  # not UTF-8, not JSON
            raise ModelError(f"{self._aliases_file} cannot be read: {exc}") from None
        if not (
            isinstance(document, dict)
            and isinstance(document.get("current"), dict)
            and isinstance(document.get("history"), list)
        ):
            raise ModelError(f"{self._aliases_file} holds no 'current' object and 'history' list")
        return document

    def aliases(self) -> dict[str, str]:
        current: dict[str, str] = self._alias_document()["current"]
        return current

    def alias_history(self) -> list[dict[str, Any]]:
        history: list[dict[str, Any]] = self._alias_document()["history"]
        return history

    def set_alias(self, alias: str, version: str | None, *, by: str) -> None:
        if version is not None:
            self.metadata(version)
        document = self._alias_document()
        previous = document["current"].get(alias)
        if version is None:
            document["current"].pop(alias, None)
        else:
            document["current"][alias] = version
        document["history"].append(
            {
                "alias": alias,
                "from": previous,
                "to": version,
                "by": by,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        _write_atomically(self._aliases_file, json.dumps(document, indent=2) + "\n")
