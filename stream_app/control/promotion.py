"""The one promotion path: publish a control command, wait for the live workers, move the aliases.

The CLI, the swap benchmark, the tests and the retraining job all call :func:`issue` (or
:func:`promote`). The rule (``docs/promotion.md``): the registry's aliases ``champion`` and
``challenger`` move only when the command was *complete* — at least one worker answered, every
worker expected (those live when it was published, unless the caller names them) answered, every
answer says ``applied``, and every answer reports the same models. They then follow what the
workers report they run. Anything else leaves the registry as it was: a refused or unanswered
command stays on the control topic, and a worker applies or refuses it again when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.registry import CHALLENGER, CHAMPION, FileModelStore, ModelDigests
from stream_app.control.client import (
    StatusReader,
    live_within_s,
    live_workers,
    operator_name,
    publish_command,
    wait_for_acks,
)
from stream_app.control.commands import CommandKind, ControlCommand, ControlStatus
from stream_app.control.signing import CommandSigner
from stream_app.settings import Settings

APPLIED = "applied"


@dataclass(frozen=True)
class PromotionResult:
    """What became of one command: who applied it, who refused it, who did not answer."""

    command: ControlCommand
    expected: frozenset[str]  # the workers waited for
    acks: dict[str, ControlStatus]  # by worker id: the expected ones, and any other that answered
    aliases_moved: bool

    @property
    def applied(self) -> list[str]:
        return sorted(w for w, ack in self.acks.items() if ack.status == APPLIED)

    @property
    def refused(self) -> list[str]:
        return sorted(w for w, ack in self.acks.items() if ack.status != APPLIED)

    @property
    def silent(self) -> list[str]:
        """Expected workers that did not answer within the timeout."""
        return sorted(self.expected - set(self.acks))

    @property
    def reported_models(self) -> set[tuple[str, str | None]]:
        """The distinct ``(champion, challenger)`` versions the answering workers now run."""
        return {(a.champion_version, a.challenger_version) for a in self.acks.values()}

    @property
    def complete(self) -> bool:
        """Someone answered, every expected worker applied it, and they all run the same models
        (the rule for moving the aliases)."""
        return (
            bool(self.acks)
            and not self.silent
            and not self.refused
            and len(self.reported_models) == 1
        )


def issue(
    settings: Settings,
    kind: CommandKind,
    version: str | None,
    timeout_s: float,
    issued_by: str | None = None,
    workers: set[str] | None = None,
) -> PromotionResult:
    """Publish ``kind`` (``version`` resolved through the registry: an unknown one raises
    ``ModelError`` before anything is published; its digests carried, and the command signed
    when a signing key is set), wait up to ``timeout_s`` for ``workers`` (the
    live workers by their heartbeats if ``None``), and move the aliases if the result is
    complete."""
    store = FileModelStore(settings.model_dir)
    digests = None
    if version is not None:  # the version and its digests, as the operator's registry has them
        metadata = store.resolve(version)
        version, digests = metadata.version, ModelDigests.of(metadata)
    command = ControlCommand.new(kind, version, issued_by or operator_name(), digests)
    signer = CommandSigner.from_settings(settings)
    if signer is not None:
        command = signer.sign(command)
    reader = StatusReader(settings)
    try:
        if workers is None:
            workers = live_workers(reader, live_within_s(settings))
        publish_command(settings, command)
        acks = wait_for_acks(reader, command.command_id, workers, timeout_s)
    finally:
        reader.close()
    result = PromotionResult(command, frozenset(workers), acks, aliases_moved=False)
    if not result.complete:
        return result
    ((champion, challenger),) = result.reported_models
    aliases = store.aliases()
    if aliases.get(CHAMPION) != champion:
        store.set_alias(CHAMPION, champion, by=command.issued_by)
    if aliases.get(CHALLENGER) != challenger:
        store.set_alias(CHALLENGER, challenger, by=command.issued_by)
    return PromotionResult(command, result.expected, acks, aliases_moved=True)


def promote(
    settings: Settings, version: str, timeout_s: float = 30.0, issued_by: str | None = None
) -> PromotionResult:
    """Make ``version`` the champion on every live worker, then in the registry."""
    return issue(settings, CommandKind.PROMOTE, version, timeout_s, issued_by)
