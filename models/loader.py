"""Loading registry versions into runtimes, each proven in a child process first."""

from __future__ import annotations

import lightgbm as lgb

from models.registry import CHAMPION, ModelDigests, ModelMetadata, ModelStore, sha256_text
from models.runtime import LightGBMRuntime
from models.verify import check_model_text
from stream_app.errors import ModelError
from stream_app.features import FEATURE_NAMES, FEATURE_SET_VERSION


class ModelLoader:
    """Loads versions of a store, each proven loadable and scoring in a child process before this
    process loads it (once per checksum): a malformed model aborts the child, not the worker.

    A version is immutable: once loaded, its text and metadata are pinned, and a later load of
    the same version whose text or metadata changed (a threshold raised, say) is refused.
    """

    def __init__(self, store: ModelStore, check_timeout_s: float = 60.0) -> None:
        self.store = store
        self._check_timeout_s = check_timeout_s
        self._checked: set[str] = set()  # SHA-256 of texts proven in a child
        self._pinned: dict[str, ModelDigests] = {}  # by version: the digests first loaded

    def load(
        self, alias_or_version: str = CHAMPION, expected: ModelDigests | None = None
    ) -> LightGBMRuntime:
        """Load a version (checksum verified, proven in a child) and refuse one built for
        another feature set, or whose digests differ from ``expected`` (a signed command's) or
        from those it had when first loaded; ``ModelError`` says why a version cannot be used."""
        metadata = self.store.resolve(alias_or_version)
        _check_compatible(metadata)
        digests = ModelDigests.of(metadata)
        _check_digests(metadata.version, digests, expected, "the signed command")
        _check_digests(
            metadata.version, digests, self._pinned.get(metadata.version), "when first loaded"
        )
        text = _text(self.store, metadata)
        if metadata.sha256 not in self._checked:
            try:
                check_model_text(text, len(FEATURE_NAMES), self._check_timeout_s)
            except ModelError as exc:
                raise ModelError(f"model {metadata.version} {exc}") from None
            self._checked.add(metadata.sha256)
        runtime = _runtime(metadata, text)  # the text proven in the child, read once
        self._pinned.setdefault(metadata.version, digests)
        return runtime


def load_model(store: ModelStore, alias_or_version: str = CHAMPION) -> LightGBMRuntime:
    """Load a version (checksum verified) and refuse one built for another feature set.

    Loads in this process: use :class:`ModelLoader` where a malformed model must not abort it.
    """
    metadata = store.resolve(alias_or_version)
    _check_compatible(metadata)
    return _runtime(metadata, _text(store, metadata))


def _text(store: ModelStore, metadata: ModelMetadata) -> str:
    """The text of ``metadata``'s version (checksum verified), checked against ``metadata``
    itself: the version must not have changed since its metadata was read."""
    text = store.load_text(metadata.version)
    if sha256_text(text) != metadata.sha256:
        raise ModelError(f"model {metadata.version} changed while it was being loaded")
    return text


def _runtime(metadata: ModelMetadata, text: str) -> LightGBMRuntime:
    """The runtime of ``metadata``'s version from its ``text``."""
    try:
        booster = lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise ModelError(f"model {metadata.version} does not load: {exc}") from exc
    return LightGBMRuntime(
        metadata.version, metadata.threshold, metadata.feature_set_version, booster
    )


def _check_digests(
    version: str, actual: ModelDigests, wanted: ModelDigests | None, source: str
) -> None:
    if wanted is None:
        return
    if actual.model != wanted.model:
        raise ModelError(f"model {version}: its text differs from {source} (SHA-256)")
    if actual.metadata != wanted.metadata:
        raise ModelError(
            f"model {version}: its metadata (threshold, feature set) differs from {source}"
        )


def _check_compatible(metadata: ModelMetadata) -> None:
    if metadata.feature_set_version != FEATURE_SET_VERSION:
        raise ModelError(
            f"model {metadata.version} uses feature set {metadata.feature_set_version}, "
            f"this worker computes {FEATURE_SET_VERSION}"
        )
    if tuple(metadata.feature_names) != FEATURE_NAMES:
        raise ModelError(f"model {metadata.version} expects features {metadata.feature_names}")
