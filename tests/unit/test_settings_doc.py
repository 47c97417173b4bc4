"""``docs/settings.md`` is generated from the settings object and cannot drift from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream_app.cli import app
from stream_app.settings import Settings
from stream_app.settings_doc import REGENERATE, fields, settings_markdown

SETTINGS_MD = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_every_setting_has_a_description() -> None:
    undocumented = {dotted for dotted, _env, info in fields() if not info.description}
    undocumented |= {name for name, info in Settings.model_fields.items() if not info.description}
    assert not undocumented, (
        f"give these a docstring in stream_app/settings.py: {sorted(undocumented)}"
    )


def test_docs_settings_md_is_the_generated_text() -> None:
    assert SETTINGS_MD.read_text() == settings_markdown(), (
        f"docs/settings.md differs from the settings object: regenerate it with `{REGENERATE}`"
    )


def test_every_setting_has_a_row_with_its_environment_variable() -> None:
    lines = settings_markdown().splitlines()
    rows = {line.split("|")[1].strip() for line in lines if line.startswith("| `")}
    assert "`topics.partitions`" in rows and "`sink_nice`" in rows
    assert len(rows) == len(list(fields()))


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({"STREAM_APP_SINK_NICE": "3"}, "sink_nice = 3"),
        ({"STREAM_APP_TOPICS__PARTITIONS": "8"}, "topics.partitions = 8"),
        ({"STREAM_APP_WAREHOUSE_PASSWORD": "hunter2"}, "warehouse_password = **********"),
    ],
)
def test_the_command_prints_what_is_in_effect_and_masks_secrets(
    env: dict[str, str], shown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    assert shown in result.stdout.splitlines()
    assert "hunter2" not in result.stdout
    markdown = CliRunner().invoke(app, ["settings", "--markdown"])
    assert markdown.stdout == settings_markdown()


def test_an_invalid_setting_is_one_clear_line_and_no_traceback() -> None:
    env = {**os.environ, "STREAM_APP_HEALTH_STALL_S": "0.5", "STREAM_APP_SINK_NICE": "lots"}
    run = subprocess.run(
        [sys.executable, "-m", "stream_app", "settings"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert (
        "  health_stall_s (STREAM_APP_HEALTH_STALL_S): Input should be greater than or equal to 2"
        in lines
    )
    assert any(line.startswith("  sink_nice (STREAM_APP_SINK_NICE): ") for line in lines)
    assert "lots" not in run.stderr  # values are not repeated: one may be a secret
