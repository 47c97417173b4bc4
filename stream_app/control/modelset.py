"""The models a worker scores with, and what each control command turns them into."""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.registry import CHALLENGER, CHAMPION, ModelStore
from stream_app.control.commands import CommandKind, ControlCommand, ControlError
from stream_app.errors import ModelError
from stream_app.scoring.model import LoadedModel, load_model


@dataclass(frozen=True)
class ModelSet:
    """The champion (scores and decides) and an optional challenger (scored in shadow)."""

    champion: LoadedModel
    challenger: LoadedModel | None = None

    @property
    def versions(self) -> tuple[str, str | None]:
        return self.champion.version, self.challenger.version if self.challenger else None


def initial_models(store: ModelStore) -> ModelSet:
    """The registry's aliases: where a worker starts before replaying the control topic."""
    aliases = store.aliases()
    if CHAMPION not in aliases:
        raise ModelError("no champion in the model registry: run `stream-app models train`")
    challenger = load_model(store, aliases[CHALLENGER]) if CHALLENGER in aliases else None
    return ModelSet(load_model(store, CHAMPION), challenger)


def prepare(store: ModelStore, current: ModelSet, command: ControlCommand) -> ModelSet:
    """The model set after ``command``: every model loaded and checked, nothing swapped yet.

    Raises ``ControlError`` (bad command) or ``ModelError`` (unknown version, checksum
    mismatch, other feature set, unloadable file); the caller keeps ``current`` then.
    """
    kind = command.kind()
    if kind in (CommandKind.PROMOTE, CommandKind.ROLLBACK):
        champion = load_model(store, str(command.version))
        challenger = current.challenger
        if challenger is not None and challenger.version == champion.version:
            challenger = None  # the challenger was promoted: its shadow slot is free
        return ModelSet(champion, challenger)
    if kind is CommandKind.SET_CHALLENGER:
        return replace(current, challenger=load_model(store, str(command.version)))
    if kind is CommandKind.CLEAR_CHALLENGER:
        return replace(current, challenger=None)
    if kind is CommandKind.RELOAD:
        champion_version, challenger_version = current.versions
        return ModelSet(
            load_model(store, champion_version),
            load_model(store, challenger_version) if challenger_version else None,
        )
    raise ControlError(f"unhandled command {kind}")  # pragma: no cover  # enum is exhaustive
