"""The worker reloads a changed rules file, and keeps its rules when the new file is bad."""

from __future__ import annotations

import os
import threading
import time

from stream_app.alerts import RuleSet
from stream_app.scoring.rules_watch import RulesWatcher

GOOD = """
[[rule]]
name = "high"
severity = "high"
description = "very likely fraud"
all = [{ feature = "score", op = ">=", value = 0.9 }]
"""
BAD = (
    GOOD
    + """
[[rule]]
name = "broken"
severity = "urgent"
description = "not a severity"
all = [{ feature = "score", op = ">=", value = 0.5 }]
"""
)


class Holder:
    """What the watcher swaps: anything with ``rules`` (the AlertBuilder in a worker)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules


def touch(path, text: str, tick: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(tick, tick))  # a distinct mtime, whatever the filesystem's resolution


def settle(watcher: RulesWatcher) -> None:
    """Check until the file read in the background has been taken (or refused)."""
    watcher.check()
    deadline = time.monotonic() + 10
    while watcher.loading and time.monotonic() < deadline:
        watcher.check()
    assert not watcher.loading


def test_reload_on_change_and_refusal_keeps_the_running_rules(tmp_path):
    path = tmp_path / "rules.toml"
    touch(path, GOOD, 1_000_000_000)
    holder = Holder(RuleSet.load(path))
    watcher = RulesWatcher(path, holder, interval_s=0)  # type: ignore[arg-type]
    touch(path, BAD, 2_000_000_000)
    settle(watcher)
    assert [r.name for r in holder.rules] == ["high"]
    assert watcher.refused is not None and "rule 2 'broken': severity" in watcher.refused
    touch(path, GOOD.replace("0.9", "0.8"), 3_000_000_000)
    settle(watcher)
    assert watcher.refused is None
    assert holder.rules.rule("high").conditions[0].value == 0.8


def test_no_file_means_nothing_to_watch():
    holder = Holder(RuleSet.default())
    watcher = RulesWatcher(None, holder, interval_s=0)  # type: ignore[arg-type]
    before = holder.rules
    watcher.check()
    assert holder.rules is before and watcher.refused is None


def test_a_fifo_in_place_of_the_rules_file_is_refused_without_blocking(tmp_path):
    path = tmp_path / "rules.toml"
    touch(path, GOOD, 1_000_000_000)
    holder = Holder(RuleSet.load(path))
    watcher = RulesWatcher(path, holder, interval_s=0)  # type: ignore[arg-type]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    os.replace(fifo, path)  # nobody ever writes to it: reading it would block forever
    started = time.monotonic()
    settle(watcher)
    assert time.monotonic() - started < 5
    assert watcher.refused is not None and "not a regular file" in watcher.refused
    assert [r.name for r in holder.rules] == ["high"]


class HangingRules:
    """Rules whose reload hangs until released (a read from a hung mount)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def reload(self, _path):
        self.release.wait()
        return RuleSet.default()


def test_a_read_that_does_not_finish_in_time_is_refused_and_scoring_goes_on(tmp_path):
    path = tmp_path / "rules.toml"
    touch(path, GOOD, 1_000_000_000)
    hanging = HangingRules()
    holder = Holder(hanging)  # type: ignore[arg-type]
    watcher = RulesWatcher(path, holder, interval_s=0, timeout_s=0.2)  # type: ignore[arg-type]
    touch(path, GOOD.replace("0.9", "0.8"), 2_000_000_000)
    started = time.monotonic()
    settle(watcher)
    hanging.release.set()
    assert 0.2 <= time.monotonic() - started < 5
    assert watcher.refused is not None and "not read within 0.2s" in watcher.refused
    assert holder.rules is hanging
