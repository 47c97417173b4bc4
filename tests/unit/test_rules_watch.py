"""The worker reloads a changed rules file, and keeps its rules when the new file is bad."""

from __future__ import annotations

import os

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


def test_reload_on_change_and_refusal_keeps_the_running_rules(tmp_path):
    path = tmp_path / "rules.toml"
    touch(path, GOOD, 1_000_000_000)
    holder = Holder(RuleSet.load(path))
    watcher = RulesWatcher(path, holder, interval_s=0)  # type: ignore[arg-type]
    touch(path, BAD, 2_000_000_000)
    watcher.check()
    assert [r.name for r in holder.rules] == ["high"]
    assert (
        watcher.refused is not None and ":8:" in watcher.refused and "severity" in watcher.refused
    )
    touch(path, GOOD.replace("0.9", "0.8"), 3_000_000_000)
    watcher.check()
    assert watcher.refused is None
    assert holder.rules.rule("high").conditions[0].value == 0.8


def test_no_file_means_nothing_to_watch():
    holder = Holder(RuleSet.default())
    watcher = RulesWatcher(None, holder, interval_s=0)  # type: ignore[arg-type]
    before = holder.rules
    watcher.check()
    assert holder.rules is before and watcher.refused is None
