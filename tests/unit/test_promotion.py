"""The promotion path's rule: the aliases move only when every expected worker applied it."""

from __future__ import annotations

import pytest

from stream_app.control.commands import CommandKind, ControlCommand, ControlStatus
from stream_app.control.promotion import PromotionResult

COMMAND = ControlCommand.new(CommandKind.PROMOTE, "2", "pytest")


def ack(worker: str, status: str = "applied", champion: str = "2") -> ControlStatus:
    return ControlStatus(
        COMMAND.command_id, COMMAND.command, "2", worker, status, "", champion, None, 0.1, 1
    )


def result(expected: set[str], *acks: ControlStatus) -> PromotionResult:
    return PromotionResult(COMMAND, frozenset(expected), {a.worker_id: a for a in acks}, False)


def test_every_expected_worker_applied_the_same_models_is_complete():
    done = result({"a", "b"}, ack("a"), ack("b"))
    assert done.complete
    assert (done.applied, done.refused, done.silent) == (["a", "b"], [], [])
    assert done.reported_models == {("2", None)}


@pytest.mark.parametrize(
    ("case", "outcome", "who"),
    [
        ("a refusal", result({"a", "b"}, ack("a"), ack("b", "refused", "1")), (["b"], [])),
        ("a silent worker", result({"a", "b"}, ack("a")), ([], ["b"])),
        ("nobody expected or answering", result(set()), ([], [])),
        ("workers that disagree", result({"a", "b"}, ack("a"), ack("b", champion="3")), None),
        ("an unexpected refusal", result({"a"}, ack("a"), ack("c", "refused", "1")), None),
    ],
)
def test_anything_less_is_not_complete(case, outcome, who):
    assert not outcome.complete, case
    if who is not None:
        assert (outcome.refused, outcome.silent) == who, case
