"""Control commands and worker acknowledgements, as records of the control and status topics."""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from models.registry import ModelDigests
from stream_app.codecs.factory import topic_codec
from stream_app.codecs.registry import SchemaRegistry
from stream_app.errors import CodecError, StreamAppError
from stream_app.events import MAX_ID_LENGTH
from stream_app.settings import Settings


class ControlError(StreamAppError):
    """A control command is malformed or cannot be applied; ``reason`` says why, briefly."""


class CommandKind(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    SET_CHALLENGER = "set_challenger"
    CLEAR_CHALLENGER = "clear_challenger"
    RELOAD = "reload"


NEEDS_VERSION = {CommandKind.PROMOTE, CommandKind.ROLLBACK, CommandKind.SET_CHALLENGER}


#: a command's text field: its reply and the log echo it, so a longer one is a malformed command
Short = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)]


class ControlCommand(msgspec.Struct, frozen=True):
    """One command, as published on the control topic."""

    command_id: Short
    command: Short
    version: Short | None
    issued_by: Short
    issued_at: int
    #: HMAC-SHA256 of the other fields (control/signing.py)
    signature: Annotated[bytes, msgspec.Meta(max_length=64)] | None = None
    key_id: Short | None = None
    model_sha256: Short | None = None  # of the named version's text and metadata, signed with it
    metadata_sha256: Short | None = None

    @classmethod
    def new(
        cls,
        kind: CommandKind,
        version: str | None,
        issued_by: str,
        digests: ModelDigests | None = None,
    ) -> ControlCommand:
        """A new command, issued now; ``digests``: the named version's, as the issuer has it."""
        return cls(
            uuid.uuid4().hex,
            kind.value,
            version,
            issued_by,
            int(time.time() * 1000),
            model_sha256=digests.model if digests else None,
            metadata_sha256=digests.metadata if digests else None,
        )

    def kind(self) -> CommandKind:
        """The validated kind; ``ControlError`` for an unknown command or a missing version."""
        try:
            kind = CommandKind(self.command)
        except ValueError:
            raise ControlError(f"unknown command {self.command!r}") from None
        if kind in NEEDS_VERSION and not self.version:
            raise ControlError(f"{kind.value} needs a version")
        return kind

    def digests(self) -> ModelDigests | None:
        """The named version's digests the command was signed with, if it carries them."""
        if self.model_sha256 is None or self.metadata_sha256 is None:
            return None
        return ModelDigests(self.model_sha256, self.metadata_sha256)

    def key(self) -> bytes:
        """Compaction key: the last command per alias is what a restarting worker must see.

        >>> ControlCommand.new(CommandKind.ROLLBACK, "1", "me").key()
        b'champion'
        """
        if self.command in (CommandKind.PROMOTE, CommandKind.ROLLBACK):
            return b"champion"
        if self.command in (CommandKind.SET_CHALLENGER, CommandKind.CLEAR_CHALLENGER):
            return b"challenger"
        return self.command.encode()


class ControlStatus(msgspec.Struct, frozen=True):
    """A worker's acknowledgement (or heartbeat, ``command='heartbeat'``) on the status topic."""

    command_id: str
    command: str
    version: str | None
    worker_id: str
    status: str  # applied, refused, alive, stopped
    reason: str
    champion_version: str
    challenger_version: str | None
    pause_ms: float
    acknowledged_at: int


class ControlCodecs:
    """Avro codecs of the control and status topics."""

    def __init__(self, settings: Settings, registry: SchemaRegistry) -> None:
        self._commands = topic_codec(settings, registry, "control")
        self._status = topic_codec(settings, registry, "control_status")

    def encode_command(self, command: ControlCommand) -> bytes:
        return self._commands.encode(msgspec.structs.asdict(command))

    def decode_command(self, value: bytes | None) -> ControlCommand:
        """A command, or ``ControlError`` saying why the record is not one."""
        try:
            record: dict[str, Any] = self._commands.decode(value or b"")
            return msgspec.convert(record, ControlCommand)
        except (CodecError, msgspec.ValidationError) as exc:
            raise ControlError(f"malformed command: {exc}") from None

    def encode_status(self, status: ControlStatus) -> bytes:
        return self._status.encode(msgspec.structs.asdict(status))

    def decode_status(self, value: bytes | None) -> ControlStatus:
        """A status, or ``ControlError`` saying why the record is not one."""
        try:
            return msgspec.convert(self._status.decode(value or b""), ControlStatus)
        except (CodecError, msgspec.ValidationError) as exc:
            raise ControlError(f"malformed status: {exc}") from None
