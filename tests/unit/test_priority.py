"""The retrain runs' and the sink's lower CPU priority, applied in a child process (a test
cannot take a priority back once lowered; 19 is the floor of the nice value)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import os, sys
from stream_app.priority import lower_cpu_priority
before = os.nice(0)
lower_cpu_priority(int(sys.argv[1]), idle=sys.argv[2] == "idle")
print(before, os.nice(0), os.sched_getscheduler(0))
"""


def probe(nice: int, idle: bool) -> tuple[int, int, int]:
    """The child's nice value before and after, and its scheduling policy after."""
    out = subprocess.run(  # our own interpreter on a literal script
        [sys.executable, "-c", PROBE, str(nice), "idle" if idle else "nice"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    before, after, policy = (int(n) for n in out)
    return before, after, policy


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_idle_adds_the_nice_value_and_enters_sched_idle() -> None:
    before, after, policy = probe(10, idle=True)
    assert after == min(19, before + 10) and policy == os.SCHED_IDLE


def test_without_idle_only_the_nice_value_changes() -> None:
    before, after, policy = probe(5, idle=False)
    assert after == min(19, before + 5) and policy == os.sched_getscheduler(0)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_the_retrain_command_runs_in_sched_idle(tmp_path) -> None:
    """The command itself, not only the function: its first line reads the policy back from the
    kernel. It then stops on the empty registry (no champion), which is all this test needs."""
    env = {**os.environ, "STREAM_APP_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    env.pop("STREAM_APP_RETRAIN_IDLE_PRIORITY", None)
    done = subprocess.run(  # our own interpreter and package
        [sys.executable, "-m", "stream_app", "retrain"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    first = done.stderr.splitlines()[0]  # progress lines go to stderr
    assert first.startswith("retrain run at CPU priority nice ") and first.endswith(", SCHED_IDLE")
    assert done.returncode != 0 and "unknown model version" in done.stderr
