"""``docs/settings.md``, generated from the settings object: every field, its environment
variable, its default and its docstring (``stream-app settings --markdown``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from stream_app.settings import CONFIG_FILE_ENV, Settings

ENV_PREFIX = "STREAM_APP_"
REGENERATE = ".venv/bin/stream-app settings --markdown > docs/settings.md"

INTRO = f"""\
# Settings

One typed settings object (`stream_app/settings.py`), read from `{ENV_PREFIX}*` environment
variables (nested with `__`, e.g. `{ENV_PREFIX}TOPICS__PARTITIONS=8`) and from an optional TOML
file named by `{CONFIG_FILE_ENV}`; constructor arguments win over the environment, which wins over
the file. The defaults run the embedded setup. `stream-app settings` prints the values in effect.

<!-- generated from the fields' docstrings: {REGENERATE} -->
"""


def fields(
    model: type[BaseModel] = Settings, prefix: str = ""
) -> Iterator[tuple[str, str, FieldInfo]]:
    """(dotted name, environment variable, field) of every leaf setting, nested models expanded."""
    for name, info in model.model_fields.items():
        dotted = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from fields(annotation, f"{dotted}.")
        else:
            yield dotted, ENV_PREFIX + dotted.replace(".", "__").upper(), info


def shown_default(info: FieldInfo) -> str:
    """The default as a reader would write it (a computed one: see the meaning).

    >>> shown_default(Settings.model_fields["sink_batch_rows"])
    '`10000`'
    >>> [shown_default(Settings.model_fields[name]) for name in ("health_stall_s", "alert_rules")]
    ['`30`', 'none']
    """
    value: Any = info.default
    if value is PydanticUndefined:
        return "computed"
    if value is None:
        return "none"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def settings_markdown() -> str:
    """The whole of ``docs/settings.md``."""
    rows = ["| setting | environment variable | default | meaning |", "|---|---|---|---|"]
    for dotted, env, info in fields():
        meaning = " ".join((info.description or "").split()).replace("|", "\\|")
        rows.append(f"| `{dotted}` | `{env}` | {shown_default(info)} | {meaning} |")
    return INTRO + "\n" + "\n".join(rows) + "\n"


def current_values(settings: Settings) -> Iterator[tuple[str, object]]:
    """(dotted name, value) of every leaf setting of ``settings`` (secrets stay masked)."""
    for dotted, _env, _info in fields():
        value: object = settings
        for part in dotted.split("."):
            value = getattr(value, part)
        yield dotted, value
