"""HMAC-SHA256 signatures of control commands, and the rules a worker accepts a command by.

The signed bytes are the command's fields except ``signature``, as JSON with sorted keys and no
spaces (``canonical_bytes``): the key id and the model digests are signed with the rest. The
rules (``docs/security.md``): a command must be signed by a known key, its id must not have been
seen before, and it must be newer than the last command accepted for the same compaction key;
a live command must also have been issued within ``control_command_max_age_s`` of the worker's
clock. Commands replayed from the compacted topic at start are exempt from the clock window
only: they are the current commands, however old.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import msgspec
from pydantic import SecretStr

from stream_app.control.commands import NEEDS_VERSION, ControlCommand, ControlError
from stream_app.settings import Settings


def canonical_bytes(command: ControlCommand) -> bytes:
    """What is signed: every field but the signature, sorted JSON.

    >>> canonical_bytes(ControlCommand("c1", "reload", None, "me", 5))
    b'{"command":"reload","command_id":"c1","issued_at":5,"issued_by":"me","key_id":null,\
"metadata_sha256":null,"model_sha256":null,"version":null}'
    """
    fields = msgspec.structs.asdict(command)
    del fields["signature"]
    return msgspec.json.encode(fields, order="sorted")


def _mac(key: SecretStr, command: ControlCommand) -> bytes:
    secret = key.get_secret_value().encode()
    return hmac.new(secret, canonical_bytes(command), hashlib.sha256).digest()


class CommandSigner:
    """Signs commands with the current key (``control_signing_key_id``)."""

    def __init__(self, key_id: str, key: SecretStr) -> None:
        self._key_id = key_id
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> CommandSigner | None:
        """The configured signer, or ``None`` when no current key id is set."""
        key_id = settings.control_signing_key_id
        if key_id is None:
            return None
        return cls(key_id, settings.control_signing_keys[key_id])

    def sign(self, command: ControlCommand) -> ControlCommand:
        keyed = msgspec.structs.replace(command, key_id=self._key_id, signature=None)
        return msgspec.structs.replace(keyed, signature=_mac(self._key, keyed))


class CommandVerifier:
    """A worker's check of each command before it loads anything; ``ControlError`` says why a
    command is refused. Off (``required=False``) it accepts every command, as before signing."""

    def __init__(self, keys: Mapping[str, SecretStr], max_age_s: float, required: bool) -> None:
        self._keys = dict(keys)
        self._max_age_ms = max_age_s * 1000
        self._required = required
        self._seen: set[str] = set()  # command ids accepted or refused after a valid signature
        self._newest: dict[bytes, int] = {}  # compaction key -> issued_at of the last accepted

    @classmethod
    def from_settings(cls, settings: Settings) -> CommandVerifier:
        return cls(
            settings.control_signing_keys,
            settings.control_command_max_age_s,
            settings.require_signed_commands,
        )

    def check(self, command: ControlCommand, now_ms: int | None) -> None:
        """Refuse ``command`` unless it passes the rules; ``now_ms`` is ``None`` while the
        compacted topic is replayed at start (no clock window then)."""
        if not self._required:
            return
        self._check_signature(command)
        if command.command_id in self._seen:
            raise ControlError(f"replayed: command id {command.command_id} was seen before")
        self._seen.add(command.command_id)
        key = command.key()
        newest = self._newest.get(key)
        if newest is not None and command.issued_at <= newest:
            raise ControlError(
                f"replayed: issued at {command.issued_at}, not after the last accepted "
                f"{key.decode()} command ({newest})"
            )
        if now_ms is not None and abs(now_ms - command.issued_at) > self._max_age_ms:
            raise ControlError(
                f"replayed or delayed: issued {(now_ms - command.issued_at) / 1000:.0f}s from "
                f"this worker's clock, more than {self._max_age_ms / 1000:g}s"
            )
        if command.command in NEEDS_VERSION and command.model_sha256 is None:
            raise ControlError(f"{command.command} carries no model digests")
        self._newest[key] = command.issued_at

    def _check_signature(self, command: ControlCommand) -> None:
        if command.signature is None:
            raise ControlError("unsigned command")
        key = self._keys.get(command.key_id or "")
        if key is None:
            raise ControlError(f"unknown signing key id {command.key_id!r}")
        if not hmac.compare_digest(command.signature, _mac(key, command)):
            raise ControlError(f"bad signature (key id {command.key_id!r})")
