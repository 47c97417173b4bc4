"""An ordinary mistake at the command line is one clear ``error:`` line and exit code 2: never a
traceback, never a secret, never a silent run on other settings than the user meant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream_app.cli_status import nothing_answered
from stream_app.kafka.config import LIBRDKAFKA_LOG

SECRET = "s3cretQS"  # noqa: S105  # a test password, to be never shown
CASES = {
    "report-into-a-missing-directory": (
        ["report", "--out", "{tmp}/no-such-directory/report.html"],
        {},
        "No such file or directory",
    ),
    "bench-json-into-a-missing-directory": (
        ["bench", "latency", "--json", "{tmp}/no-such-directory/bench.json"],
        {},
        "Invalid value for '--json': no directory",
    ),
    "unknown-log-level": (["--log-level", "bogus", "settings"], {}, "'bogus' is not one of"),
    "missing-config-file": (
        ["settings"],
        {"STREAM_APP_CONFIG": "{tmp}/stream-app.toml"},
        "stream-app.toml: no such file",
    ),
    "config-file-not-toml": (
        ["settings"],
        {"STREAM_APP_CONFIG": "{tmp}/bad.toml"},
        "error: invalid settings: ",
    ),
    "topics-not-json": (
        ["settings"],
        {"STREAM_APP_TOPICS": "{bad"},
        'error: invalid settings: error parsing value for field "topics"',
    ),
    "dsn-without-its-scheme": (
        ["sql", "SELECT 1"],
        {"STREAM_APP_WAREHOUSE_DSN": f"alice:{SECRET}@127.0.0.1:1"},
        "warehouse_dsn (STREAM_APP_WAREHOUSE_DSN): String should match pattern",
    ),
    "password-in-the-dsn-query": (
        ["sql", "SELECT 1"],
        {"STREAM_APP_WAREHOUSE_DSN": f"http://127.0.0.1:1/?user=alice&password={SECRET}"},
        "password=***",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_an_ordinary_mistake_is_one_clear_error(
    case: tuple[list[str], dict[str, str], str], tmp_path: Path
) -> None:
    args, variables, expected = case
    (tmp_path / "bad.toml").write_text("[[\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    env |= {"STREAM_APP_STATE_DIR": str(tmp_path / "state"), "STREAM_APP_SQL_PORT": "9"}
    env |= {name: value.replace("{tmp}", str(tmp_path)) for name, value in variables.items()}
    run = subprocess.run(  # this interpreter, the project's own CLI
        [sys.executable, "-m", "stream_app", *(a.replace("{tmp}", str(tmp_path)) for a in args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = " ".join((run.stdout + run.stderr).split())  # rich wraps long lines
    assert run.returncode == 2, output
    assert "Traceback" not in output and SECRET not in output
    assert expected in output


def test_status_exits_1_only_when_neither_the_broker_nor_the_sink_answered() -> None:
    silent = {"error": "cannot reach 127.0.0.1:1"}
    down = {"lag": silent, "workers": silent, "sink": {"status": "not answering"}}
    assert nothing_answered(down)
    assert not nothing_answered(down | {"sink": {"status": "ok"}})
    assert not nothing_answered(down | {"workers": []})  # the broker answered: no worker yet


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["status"], "lag unknown: cannot reach 127.0.0.1:1 within 2 s"),
        (["models", "list"], "(cannot read control-status: cannot reach 127.0.0.1:1 within 2 s"),
    ],
    ids=["status", "models-list"],
)
def test_a_command_without_a_broker_says_so_once_without_librdkafkas_reconnect_lines(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    """Before, ``status`` printed 485 librdkafka lines (``%3|…|FAIL|…``) in 27 s and ``models
    list`` 293 while their consumers reconnected to a broker that was not there. It says, once on
    standard error, what it waits for and why, and gives up after ``broker_wait_s``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    env |= {"STREAM_APP_STATE_DIR": str(tmp_path), "STREAM_APP_SQL_PORT": "9"}
    env |= {"STREAM_APP_BOOTSTRAP_SERVERS": "127.0.0.1:1", "COLUMNS": "300"}
    env |= {"STREAM_APP_BROKER_WAIT_S": "2"}
    run = subprocess.run(  # this interpreter, the project's own CLI
        [sys.executable, "-m", "stream_app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert expected in " ".join(output.split()), output
    assert "|FAIL|" not in output and LIBRDKAFKA_LOG.name not in output, output  # librdkafka's
    assert "Traceback" not in output, output
    waiting = [line for line in run.stderr.splitlines() if line.startswith("waiting for a broker")]
    assert len(waiting) == 1, run.stderr
    assert waiting[0].startswith("waiting for a broker at 127.0.0.1:1 (up to 2 s): "), waiting
    assert "Connection refused" in waiting[0], waiting
