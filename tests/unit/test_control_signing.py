"""Signed control commands: what a worker accepts, what it refuses and why (docs/security.md)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import fastavro
import msgspec
import pytest
from pydantic import SecretStr

from models.loader import ModelLoader
from models.registry import FileModelStore, ModelDigests, ModelMetadata, sha256_text
from stream_app.codecs.avro import load_schema
from stream_app.codecs.factory import schema_registry
from stream_app.control.commands import CommandKind, ControlCodecs, ControlCommand, ControlError
from stream_app.control.signing import CommandSigner, CommandVerifier
from stream_app.errors import ModelError
from stream_app.settings import Settings

KEY = "k3y-that-must-never-be-printed"
KEYS = {"2026-12": SecretStr(KEY), "old": SecretStr("an older key")}
NOW = 1_800_000_000_000
SIGNER = CommandSigner("2026-12", KEYS["2026-12"])
DIGESTS = {"model_sha256": "a" * 64, "metadata_sha256": "b" * 64}


def command(kind=CommandKind.PROMOTE, version="2", issued_at=NOW, command_id="c1"):
    return ControlCommand(command_id, kind.value, version, "pytest", issued_at, **DIGESTS)


def verifier(required: bool = True) -> CommandVerifier:
    return CommandVerifier(KEYS, max_age_s=300, required=required)


def refusal(check: CommandVerifier, cmd: ControlCommand, now_ms: int | None = NOW) -> str:
    with pytest.raises(ControlError) as raised:
        check.check(cmd, now_ms)
    return str(raised.value)


def test_a_signed_command_is_accepted_and_survives_the_topic_codec(settings):
    codecs = ControlCodecs(settings, schema_registry(settings))
    signed = SIGNER.sign(command())
    decoded = codecs.decode_command(codecs.encode_command(signed))
    assert decoded == signed and decoded.key_id == "2026-12" and len(decoded.signature or b"") == 32
    verifier().check(decoded, NOW)


def test_a_command_signed_with_an_older_key_still_in_the_map_is_accepted():
    verifier().check(CommandSigner("old", KEYS["old"]).sign(command()), NOW)


@pytest.mark.parametrize(
    ("case", "forged", "reason"),
    [
        ("unsigned", command(), "unsigned command"),
        (
            "made-up signature",
            msgspec.structs.replace(command(), key_id="2026-12", signature=b"\x00" * 32),
            "bad signature",
        ),
        (
            "unknown key id",
            CommandSigner("stolen", SecretStr("x")).sign(command()),
            "unknown signing key id 'stolen'",
        ),
        (
            "version changed after signing",
            msgspec.structs.replace(SIGNER.sign(command()), version="3"),
            "bad signature",
        ),
        (
            "threshold digest changed after signing",
            msgspec.structs.replace(SIGNER.sign(command()), metadata_sha256="c" * 64),
            "bad signature",
        ),
        (
            "key id swapped after signing",
            msgspec.structs.replace(SIGNER.sign(command()), key_id="old"),
            "bad signature",
        ),
        ("too old", SIGNER.sign(command(issued_at=NOW - 301_000)), "more than 300s"),
        ("from the future", SIGNER.sign(command(issued_at=NOW + 301_000)), "more than 300s"),
        (
            "no model digests",
            SIGNER.sign(
                msgspec.structs.replace(command(), model_sha256=None, metadata_sha256=None)
            ),
            "no model digests",
        ),
    ],
)
def test_forged_or_stale_commands_are_refused(case, forged, reason):
    assert reason in refusal(verifier(), forged), case


def test_a_command_id_is_accepted_once():
    check, signed = verifier(), SIGNER.sign(command())
    check.check(signed, NOW)
    assert "command id c1 was seen before" in refusal(check, signed, NOW + 1)


def test_an_older_command_for_the_same_alias_is_refused_even_under_a_new_id():
    check = verifier()
    check.check(SIGNER.sign(command(issued_at=NOW, command_id="new")), NOW)
    old = SIGNER.sign(command(kind=CommandKind.ROLLBACK, issued_at=NOW - 1000, command_id="old"))
    assert "not after the last accepted champion command" in refusal(check, old)
    # another alias has its own order
    check.check(SIGNER.sign(command(CommandKind.SET_CHALLENGER, "1", NOW - 1000, "c2")), NOW)


def test_replay_at_start_has_no_clock_window_but_keeps_the_other_rules():
    """The compacted topic holds the current commands however old: a worker starting a week
    later applies them; a duplicate within the replay is still refused."""
    check, week_old = verifier(), SIGNER.sign(command(issued_at=NOW - 7 * 86_400_000))
    check.check(week_old, None)
    assert "seen before" in refusal(check, week_old, None)
    assert "unsigned" in refusal(check, command(command_id="c9"), None)


def test_with_signing_not_required_every_command_passes():
    verifier(required=False).check(command(issued_at=0), NOW)


def test_the_key_is_in_no_repr_and_no_refusal_log(caplog):
    settings = Settings(control_signing_keys=KEYS, control_signing_key_id="2026-12")
    assert KEY not in repr(settings) and KEY not in str(settings)
    assert KEY not in repr(SIGNER.__dict__)
    with caplog.at_level(logging.DEBUG):
        for forged in (command(), SIGNER.sign(command(issued_at=0))):
            logging.getLogger("stream_app").warning("refused: %s", refusal(verifier(), forged))
    assert "refused" in caplog.text and KEY not in caplog.text


def test_the_current_key_id_must_be_one_of_the_keys():
    with pytest.raises(ValueError, match="not in control_signing_keys"):
        Settings(control_signing_keys=KEYS, control_signing_key_id="missing")


@pytest.fixture
def registry(trained_store: tuple[FileModelStore, ModelMetadata], tmp_path: Path):
    """A private registry holding the trained model as version 1, and that version's directory."""
    source, trained = trained_store
    store = FileModelStore(tmp_path / "registry")
    store.register(
        source.load_text(trained.version), feature_set_version=trained.feature_set_version,
        feature_names=trained.feature_names, threshold=trained.threshold, training={},
        evaluation={},
    )  # fmt: skip
    return store, tmp_path / "registry" / "1"


def _rewrite_metadata(directory: Path, **changes: object) -> None:
    path = directory / "metadata.json"
    metadata = msgspec.json.decode(path.read_bytes(), type=ModelMetadata)
    path.write_bytes(msgspec.json.encode(msgspec.structs.replace(metadata, **changes)))


def test_a_model_replaced_with_its_checksum_is_refused(registry):
    store, directory = registry
    signed = ModelDigests.of(store.metadata("1"))
    text = (directory / "model.txt").read_text().replace("tree", "tree ", 1)
    (directory / "model.txt").write_text(text)
    _rewrite_metadata(directory, sha256=sha256_text(text))
    store.load_text("1")  # the registry's own checksum is satisfied
    with pytest.raises(ModelError, match="its text differs from the signed command"):
        ModelLoader(store).load("1", signed)


def test_a_raised_threshold_is_refused_by_a_command_and_by_a_reload(registry):
    store, directory = registry
    signed = ModelDigests.of(store.metadata("1"))
    loader = ModelLoader(store)
    assert loader.load("1", signed).version == "1"
    _rewrite_metadata(directory, threshold=0.999)
    with pytest.raises(ModelError, match=r"metadata \(threshold, feature set\) differs from the s"):
        ModelLoader(store).load("1", signed)
    with pytest.raises(ModelError, match="differs from when first loaded"):
        loader.load("1")  # a reload, no digests in the command


def test_a_command_written_before_signing_existed_still_decodes(settings):
    """The compacted topic of an existing setup holds commands of the first schema (id 4)."""
    codecs = ControlCodecs(settings, schema_registry(settings))
    first = load_schema(settings.schemas_dir, "control_command_v1.avsc")
    body = io.BytesIO()
    old = {"command_id": "c0", "command": "promote", "version": "1", "issued_by": "me",
           "issued_at": 1, "signature": None}  # fmt: skip
    fastavro.schemaless_writer(body, fastavro.parse_schema(first), old)
    decoded = codecs.decode_command(b"\x00\x00\x00\x00\x04" + body.getvalue())
    assert decoded == ControlCommand("c0", "promote", "1", "me", 1)
    assert codecs.encode_command(decoded)[:5] == b"\x00\x00\x00\x00\x09"  # written as the new one
