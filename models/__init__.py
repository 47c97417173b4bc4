"""Model registry: LightGBM text models with metadata, checksums and aliases."""

from models.registry import FileModelStore, ModelMetadata, ModelStore

__all__ = ["FileModelStore", "ModelMetadata", "ModelStore"]
