"""Helpers shared by unit test modules (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import shutil
from pathlib import Path

from stream_app.devtools.generator import DAY_MS
from stream_app.timing import now_ms

#: yesterday 00:00 UTC, the generator's default start: event times relative to the wall clock,
#: so the event checks accept them whatever the date is
YESTERDAY_MS = now_ms() // DAY_MS * DAY_MS - DAY_MS
REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT / "schemas"
PRODUCT_PACKAGES = ("stream_app", "models", "monitors")


def copy_schemas(target: Path) -> Path:
    """A private copy of ``schemas/``: the file registry writes new ids into it."""
    shutil.copytree(SCHEMAS_DIR, target, dirs_exist_ok=True)
    return target


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative path → bytes)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*")
            if p.is_file()}  # fmt: skip


@functools.cache
def import_product() -> None:
    """Import every module of the product, so that every implementation of an interface exists
    wherever it is defined (``__main__`` modules, which run the CLI, are skipped)."""
    for package_name in PRODUCT_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if not module.name.endswith(".__main__"):
                importlib.import_module(module.name)


def concrete_subclasses(base: type) -> list[type]:
    """Non-abstract subclasses of ``base`` defined in the product (not in tests), any depth."""
    import_product()
    found: set[type] = set()
    stack: list[type] = list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if not inspect.isabstract(cls) and cls.__module__.split(".")[0] in PRODUCT_PACKAGES:
            found.add(cls)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")
