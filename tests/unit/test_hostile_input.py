"""The entry points that read what others send — a transactions record, a control record, a rules
file, a poll of predictions records as the sink decodes it — keep their promise
(``tests/fuzz/targets.py``) on the seeds and kept regressions, on hypothesis' inputs and mutations
of valid ones, and in a short coverage-guided run (``make fuzz`` runs each target a million
times)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.codecs.avro import frame
from tests.fuzz.seeds import seeds
from tests.fuzz.targets import (
    TARGETS,
    Broken,
    kit,
    poll,
    record,
    split_poll,
    split_record,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def _kit() -> None:
    kit()


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_seed_and_kept_regression_keeps_the_promise(target: str) -> None:
    found = seeds(target)
    assert len(found) >= 1
    for data in found:
        TARGETS[target](data)


@st.composite
def mutated(draw: st.DrawFn, target: str) -> bytes:
    """A seed with a slice replaced by arbitrary bytes."""
    base = draw(st.sampled_from(seeds(target)))
    start = draw(st.integers(0, len(base)))
    end = draw(st.integers(start, len(base)))
    return base[:start] + draw(st.binary(max_size=64)) + base[end:]


@pytest.mark.parametrize("target", sorted(TARGETS))
@FAST
@given(data=st.data())
def test_arbitrary_and_mutated_inputs_keep_the_promise(target: str, data: st.DataObject) -> None:
    TARGETS[target](data.draw(st.one_of(st.binary(max_size=512), mutated(target))))


@FAST
@given(text=st.text(max_size=300))
def test_any_text_as_a_rules_file(text: str) -> None:
    TARGETS["rules"](text.encode("utf-8", "surrogatepass"))


def test_the_record_target_fails_when_a_decoder_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """The promise can fail: a decoder that raises something other than a codec error breaks
    it (the pipeline would stop on that record)."""

    def broken(value: bytes | None) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(kit().pipeline._decoder, "decode", broken)
    with pytest.raises(ValueError, match="boom"):
        record(b"c1\x00{}")


def test_a_dead_letter_without_its_reason_breaks_the_promise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    letters = kit().pipeline.dead_letters
    original = letters.of
    monkeypatch.setattr(letters, "of", lambda rec, reason, detail: original(rec, "", detail))
    with pytest.raises(Broken, match="without a reason"):
        record(b"c1\x00not json")


def test_split_record() -> None:
    assert split_record(b"card\x00value") == (b"card", b"value")
    assert split_record(b"no key here") == (None, b"no key here")


def test_the_poll_seeds_are_decoded_column_by_column() -> None:
    """The poll target reaches the column reader: its seeds (1, 2 and 8 predictions) are not left
    to the record-by-record path."""
    codec = kit().predictions
    polls = [split_poll(seed) for seed in seeds("poll")]
    assert [len(bodies) for bodies in polls] == [1, 2, 8]
    for bodies in polls:
        assert codec.decode_columns([frame(codec.schema_id, body) for body in bodies]) is not None


def test_columns_that_differ_from_the_records_break_the_poll_promise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = kit().predictions
    original = codec.decode_columns

    def off_by_one(values: list[bytes]) -> dict[str, list[object]] | None:
        columns = original(values)
        assert columns is not None
        columns["event_id"] = columns["event_id"][1:] + columns["event_id"][:1]
        return columns

    monkeypatch.setattr(codec, "decode_columns", off_by_one)
    with pytest.raises(Broken, match="differ"):
        poll(seeds("poll")[1])


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_short_coverage_guided_run_finds_nothing(target: str, tmp_path) -> None:
    run = [sys.executable, "-m", "tests.fuzz.run", target, "--runs", "3000"]
    result = subprocess.run(  # our own module
        [*run, "--work", str(tmp_path)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 3000 runs" in result.stderr
