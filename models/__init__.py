"""Models: the registry (LightGBM text models with metadata, checksums and aliases), the runtimes
that score with them (:mod:`models.runtime`) and the loader between the two."""

from models.registry import FileModelStore, ModelMetadata, ModelStore

__all__ = ["FileModelStore", "ModelMetadata", "ModelStore"]
