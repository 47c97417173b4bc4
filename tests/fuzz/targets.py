"""What each entry point promises whatever its input holds: the fuzz targets (``run.py``), the
property tests (``tests/unit/test_hostile_input.py``) and the replay of the kept cases share them.

- ``record``: a transactions record (its value; the key is the first bytes) is scored, or becomes
  one dead letter with a reason that the sink can decode; nothing raises.
- ``command``: a control record is a command and the model set it leads to, or a refusal with its
  reason; nothing raises.
- ``rules``: a rules file loads into rules that evaluate a batch, or is refused with a
  ``RuleError``; nothing else raises.
- ``poll``: a poll of predictions records (Avro bodies under the current schema id, as the sink
  reads them) decoded column by column gives what the record-by-record path gives, or ``None``
  (the sink then goes record by record), and ``None`` whenever that path refuses a record;
  nothing raises.

Each target is ``bytes -> None`` and fails with :class:`Broken` (or whatever escaped) when the
promise is broken. The first call builds what the targets share (a small model is trained once).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from pydantic import SecretStr

from models.loader import ModelLoader, load_model
from models.registry import FileModelStore
from models.train import TrainingConfig, train_model
from stream_app.alerts import RuleSet
from stream_app.alerts.loader import RuleError
from stream_app.codecs.avro import AvroRecordCodec, frame
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.control.commands import ControlCodecs
from stream_app.control.modelset import ModelSet
from stream_app.control.signing import CommandVerifier
from stream_app.control.switch import prepare_command
from stream_app.errors import CodecError
from stream_app.scoring.build import build_pipeline
from stream_app.scoring.pipeline import ScoringPipeline
from stream_app.settings import Settings
from stream_app.timing import now_ms
from tests.columns import by_record, comparable_record

Target = Callable[[bytes], None]
REASON = re.compile(r"^[a-z][a-z_]*$")
KEY_BYTES = 40  # the record target's key: up to this many leading bytes, cut at the first NUL


class Broken(AssertionError):
    """An entry point broke its promise on an input."""


@dataclass(frozen=True)
class Kit:
    settings: Settings
    pipeline: ScoringPipeline
    models: ModelSet
    dead_letters: AvroRecordCodec
    predictions: AvroRecordCodec
    codecs: ControlCodecs
    loader: ModelLoader
    verifiers: tuple[CommandVerifier, CommandVerifier]  # signing off, signing required


@cache
def kit() -> Kit:
    """Built once per process; the registry the loader reads is empty, so no command loads a
    model (loading proves a model in a child process: far too slow per input)."""
    root = Path(tempfile.mkdtemp(prefix="stream-app-fuzz-"))
    settings = Settings(schema_registry_dir=root / "schema-registry", worker_id="fuzz")
    trained = FileModelStore(root / "trained")
    train_model(trained, TrainingConfig(events=3_000, num_trees=5))
    registry = schema_registry(settings)
    return Kit(
        settings=settings,
        pipeline=build_pipeline(settings, registry),
        models=ModelSet(load_model(trained), None),
        dead_letters=topic_codec(settings, registry, "dead_letters"),
        predictions=topic_codec(settings, registry, "predictions"),
        codecs=ControlCodecs(settings, registry),
        loader=ModelLoader(FileModelStore(root / "empty"), settings.model_check_timeout_s),
        verifiers=(
            CommandVerifier({}, 300, required=False),
            CommandVerifier({"k1": SecretStr("fuzz-signing-key")}, 300, required=True),
        ),
    )


@dataclass(frozen=True)
class ConsumedRecord:
    """A consumed record as the pipeline sees it."""

    _value: bytes | None
    _key: bytes | None

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def topic(self) -> str | None:
        return "transactions"

    def partition(self) -> int | None:
        return 0

    def offset(self) -> int | None:
        return 7

    def timestamp(self) -> tuple[int, int]:
        return (1, now_ms())


def split_record(data: bytes) -> tuple[bytes | None, bytes]:
    """A fuzz input as (key, value): the key is what comes before the first NUL among the first
    ``KEY_BYTES`` bytes (no NUL there: no key)."""
    cut = data.find(b"\x00", 0, KEY_BYTES)
    return (None, data) if cut < 0 else (data[:cut], data[cut + 1 :])


def record(data: bytes) -> None:
    key, value = split_record(data)
    k = kit()
    result = k.pipeline.process([ConsumedRecord(value, key)], k.models)
    if result.scored + result.dead_lettered != 1:
        raise Broken(f"scored {result.scored} + dead-lettered {result.dead_lettered} != 1")
    if result.dead_lettered:
        letter = k.dead_letters.decode(result.outputs[0].value)  # the sink must read it
        if not REASON.match(str(letter["reason"])):
            raise Broken(f"dead letter without a reason: {letter['reason']!r}")
        if letter["payload"] != (value or b"")[: len(letter["payload"])]:
            raise Broken("the dead letter's payload is not the record's")


def command(data: bytes) -> None:
    k = kit()
    for verifier in k.verifiers:
        parsed, models, reason = prepare_command(
            data, k.models, k.codecs, verifier, k.loader, now_ms()
        )
        if (models is None) == (reason == ""):
            raise Broken(f"a result and a refusal at once, or neither: {models}, {reason!r}")
        if parsed is None and models is not None:
            raise Broken("a model set from a record that is not a command")


def rules(data: bytes) -> None:
    """As :meth:`RuleSet.load` reads a file (its bytes as UTF-8), without the file."""
    try:
        loaded = RuleSet.parse(data.decode("utf-8"), "fuzz.toml")
    except (RuleError, UnicodeDecodeError):  # load() turns the latter into a RuleError
        return
    columns = {name: np.linspace(-1e6, 1e6, 5) for name in loaded.features}
    loaded.evaluate(columns, ["grocery", "atm", "", "jewelry", "x" * 300])


def split_poll(data: bytes) -> list[bytes]:
    """A fuzz input as a poll's record bodies: each body is preceded by its length in two bytes
    (big-endian); the last takes what is left."""
    bodies = []
    while len(data) > 2:
        size = int.from_bytes(data[:2], "big")
        bodies.append(data[2 : 2 + size])
        data = data[2 + size :]
    return bodies or [data]


def join_poll(bodies: list[bytes]) -> bytes:
    """The inverse of :func:`split_poll` (for the seeds)."""
    return b"".join(len(body).to_bytes(2, "big") + body for body in bodies)


def poll(data: bytes) -> None:
    codec = kit().predictions
    values = [frame(codec.schema_id, body) for body in split_poll(data)]
    columns = codec.decode_columns(values)
    if columns is None:
        return  # the sink decodes the poll record by record: the path ``record`` fuzzes
    try:
        expected = [codec.decode(value) for value in values]
    except CodecError as exc:
        raise Broken(f"columns for a poll the record path refuses ({exc})") from None
    if by_record(columns) != [comparable_record(record) for record in expected]:
        raise Broken("the columns differ from the records decoded one by one")


TARGETS: dict[str, Target] = {
    "record": record,
    "command": command,
    "rules": rules,
    "poll": poll,
}
