"""The models a worker scores with, and what each control command turns them into."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from models.loader import ModelLoader
from models.registry import CHALLENGER, CHAMPION
from models.runtime import ModelRuntime
from stream_app.control.commands import CommandKind, ControlCommand, ControlError
from stream_app.errors import ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSet:
    """The champion (scores and decides) and an optional challenger (scored in shadow)."""

    champion: ModelRuntime
    challenger: ModelRuntime | None = None

    @property
    def versions(self) -> tuple[str, str | None]:
        return self.champion.version, self.challenger.version if self.challenger else None


def initial_models(loader: ModelLoader) -> tuple[ModelSet, list[str]]:
    """The registry's aliases: where a worker starts before replaying the control topic, and why
    any of them could not be used.

    A champion that cannot be used gives way to the previous champions of the alias history,
    newest first; a challenger that cannot be used is left out. Each refusal is logged and
    returned, for the worker to say so on the status topic.
    """
    store = loader.store
    aliases = store.aliases()
    if CHAMPION not in aliases:
        raise ModelError("no champion in the model registry: run `stream-app models train`")
    refusals: list[str] = []
    champion = _first_usable_champion(loader, refusals)
    challenger = _challenger(loader, aliases.get(CHALLENGER), refusals)
    return ModelSet(champion, challenger), refusals


def _first_usable_champion(loader: ModelLoader, refusals: list[str]) -> ModelRuntime:
    history = [c["from"] for c in loader.store.alias_history() if c["alias"] == CHAMPION]
    candidates = [CHAMPION, *dict.fromkeys(str(v) for v in reversed(history) if v is not None)]
    tried = len(refusals)
    for candidate in candidates:
        try:
            model = loader.load(candidate)
        except ModelError as exc:
            refusals.append(f"champion candidate {candidate} refused: {exc}")
            log.error("%s", refusals[-1])
            continue
        if len(refusals) > tried:
            refusals.append(f"falling back to model {model.version}, the last champion that loads")
            log.error("%s", refusals[-1])
        return model
    raise ModelError("no usable champion: " + "; ".join(refusals[tried:]))


def _challenger(
    loader: ModelLoader, version: str | None, refusals: list[str]
) -> ModelRuntime | None:
    if version is None:
        return None
    try:
        return loader.load(version)
    except ModelError as exc:
        refusals.append(f"challenger {version} left out: {exc}")
        log.error("%s", refusals[-1])
        return None


def prepare(loader: ModelLoader, current: ModelSet, command: ControlCommand) -> ModelSet:
    """The model set after ``command``: every model loaded and checked, nothing swapped yet.

    Raises ``ControlError`` (bad command) or ``ModelError`` (unknown version, checksum
    mismatch, other feature set, unloadable file); the caller keeps ``current`` then.
    """
    kind = command.kind()
    if kind in (CommandKind.PROMOTE, CommandKind.ROLLBACK):
        champion = loader.load(str(command.version), command.digests())
        challenger = current.challenger
        if challenger is not None and challenger.version == champion.version:
            challenger = None  # the challenger was promoted: its shadow slot is free
        return ModelSet(champion, challenger)
    if kind is CommandKind.SET_CHALLENGER:
        return replace(current, challenger=loader.load(str(command.version), command.digests()))
    if kind is CommandKind.CLEAR_CHALLENGER:
        return replace(current, challenger=None)
    if kind is CommandKind.RELOAD:
        champion_version, challenger_version = current.versions
        return ModelSet(
            loader.load(champion_version),
            loader.load(challenger_version) if challenger_version else None,
        )
    raise ControlError(f"unhandled command {kind}")  # pragma: no cover  # enum is exhaustive
