"""The online learner and the retrainer wait out a silent Schema Registry on the record they
read, as the worker does on its batch (``test_registry_outage.py``): the record is neither
passed over as undecodable nor lost, and a stop during the wait leaves its offset unnoted."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from stream_app.codecs import retry
from stream_app.errors import SchemaRegistryUnavailable
from stream_app.online.service import OnlineLearnerLoop
from stream_app.retraining.service import RetrainerLoop, RetrainerStats

DETECTION = {"event_time": 1, "detector": "psi", "feature": "", "input_partition": 3,
             "input_offset": 493}  # fmt: skip


@dataclass
class SilentThenAnswering:
    """A codec whose Schema Registry is silent for its first ``silent`` decodes."""

    value: dict[str, Any]
    silent: int
    calls: int = 0

    def decode(self, _data: bytes) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.silent:
            raise SchemaRegistryUnavailable("registry at http://127.0.0.1:1 did not answer")
        return self.value


@dataclass
class Message:
    topic_name: str
    offset_value: int

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.offset_value

    def value(self) -> bytes:
        return b"\x00\x00\x00\x00\x07framed"

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)


@dataclass
class LabelsSeen:
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    labels: list[tuple[str, bool]] = field(default_factory=list)

    def on_label(self, event_id: str, is_fraud: bool) -> None:
        self.labels.append((event_id, is_fraud))


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "FIRST_PAUSE_S", 0.01)


def learner(codec: SilentThenAnswering, stopping: threading.Event) -> OnlineLearnerLoop:
    """The learner's loop with only what reading a label needs."""
    loop = OnlineLearnerLoop.__new__(OnlineLearnerLoop)
    loop._features_topic, loop._labels_topic = "scored-features", "labels"
    loop._labels = codec  # type: ignore[assignment]
    loop._stopping = stopping
    loop.state = LabelsSeen()  # type: ignore[assignment]
    return loop


def test_the_learner_waits_for_the_registry_and_then_learns_the_label() -> None:
    codec = SilentThenAnswering({"event_id": "e1", "is_fraud": True}, silent=3)
    loop = learner(codec, threading.Event())
    assert loop._handle(Message("labels", 41)) is True  # type: ignore[arg-type]
    assert codec.calls == 4
    assert loop.state.labels == [("e1", True)]  # type: ignore[attr-defined]
    assert loop.state.offsets == {("labels", 0): 42}


def test_a_learner_stopped_while_the_registry_is_silent_leaves_the_record_unread() -> None:
    stopping = threading.Event()
    codec = SilentThenAnswering({"event_id": "e1", "is_fraud": True}, silent=1_000)
    loop = learner(codec, stopping)
    threading.Timer(0.1, stopping.set).start()
    assert loop._handle(Message("labels", 41)) is False  # type: ignore[arg-type]
    assert loop.state.labels == [] and loop.state.offsets == {}  # type: ignore[attr-defined]


class IgnoresEverything:
    def ignored(self, _detection: dict[str, Any]) -> str:
        return "no retraining for this detector"


def retrainer(codec: SilentThenAnswering, stopping: threading.Event) -> RetrainerLoop:
    """The retrainer's loop with only what reading a detection needs."""
    loop = RetrainerLoop.__new__(RetrainerLoop)
    loop._codec = codec  # type: ignore[assignment]
    loop._stopping = stopping
    loop._policy = IgnoresEverything()  # type: ignore[assignment]
    loop.stats = RetrainerStats()
    return loop


def test_the_retrainer_waits_for_the_registry_and_then_decides() -> None:
    codec = SilentThenAnswering(DETECTION, silent=3)
    loop = retrainer(codec, threading.Event())
    assert loop._decide(Message("drift-events", 7)) is True  # type: ignore[arg-type]
    assert codec.calls == 4
    assert dict(loop.stats.skipped) == {"not_configured": 1}  # read, then decided on


def test_a_retrainer_stopped_while_the_registry_is_silent_leaves_the_detection_undecided() -> None:
    stopping = threading.Event()
    loop = retrainer(SilentThenAnswering(DETECTION, silent=1_000), stopping)
    threading.Timer(0.1, stopping.set).start()
    assert loop._decide(Message("drift-events", 7)) is False  # type: ignore[arg-type]
    assert dict(loop.stats.skipped) == {}  # not passed over as undecodable: read again
