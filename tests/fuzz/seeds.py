"""Where the fuzzer starts: valid inputs and every known bad case of each target, made from the
project's own encoders (so they follow the schemas as they change), plus the kept regressions."""

from __future__ import annotations

import itertools
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import SecretStr

from models.registry import ModelDigests
from stream_app.codecs.factory import avro_transactions, schema_registry
from stream_app.codecs.json import JsonCodec
from stream_app.control.commands import CommandKind, ControlCommand
from stream_app.control.signing import CommandSigner
from stream_app.devtools.bad_events import CATALOGUE, card_key
from stream_app.devtools.generator import TransactionGenerator
from stream_app.timing import now_ms
from tests.fuzz.targets import ConsumedRecord, join_poll, kit

REGRESSIONS = Path(__file__).parent / "regressions"


def regressions(target: str) -> list[bytes]:
    """Inputs that once broke ``target`` (``tests/fuzz/regressions/<target>/``), kept for ever."""
    directory = REGRESSIONS / target
    return [p.read_bytes() for p in sorted(directory.glob("*"))] if directory.is_dir() else []


@cache
def seeds(target: str) -> list[bytes]:
    found = {"record": _records, "command": _commands, "rules": _rules, "poll": _polls}[target]()
    return found + regressions(target)


def _events() -> list[dict]:
    return [
        labelled.event
        for labelled in itertools.islice(TransactionGenerator.ending_at(8, now_ms(), seed=3), 8)
    ]


def _records() -> list[bytes]:
    settings = kit().settings
    events = _events()
    avro = avro_transactions(settings, schema_registry(settings))
    found = [card_key(e) + b"\x00" + JsonCodec().encode(e) for e in events[:4]]
    found += [card_key(e) + b"\x00" + avro.encode(e) for e in events[4:]]
    found += [case.key(events[0]) + b"\x00" + case.make(events[0]) for case in CATALOGUE]
    return found


def _commands() -> list[bytes]:
    codecs = kit().codecs
    digests = ModelDigests("a" * 64, "b" * 64)
    signer = CommandSigner("k1", SecretStr("fuzz-signing-key"))
    commands = [
        ControlCommand.new(kind, None if kind.value.startswith(("clear", "reload")) else "1", "me")
        for kind in CommandKind
    ]
    commands.append(ControlCommand.new(CommandKind.PROMOTE, "2", "me", digests))
    commands += [signer.sign(c) for c in commands]
    return [codecs.encode_command(c) for c in commands]


def _rules() -> list[bytes]:
    return [resources.files("stream_app.alerts").joinpath("default_rules.toml").read_bytes()]


def _polls() -> list[bytes]:
    """Polls of 1, 2 and 8 predictions of the real pipeline, framing stripped."""
    k = kit()
    json = JsonCodec()
    records = [ConsumedRecord(json.encode(e), card_key(e)) for e in _events()]
    result = k.pipeline.process(records, k.models)
    topic = k.settings.topics.predictions
    bodies = [out.value[5:] for out in result.outputs if out.topic == topic]
    return [join_poll(bodies[:1]), join_poll(bodies[:2]), join_poll(bodies)]
