"""Fixtures and hooks shared by every suite (and, for the hooks, by pytest-xdist's controller,
which loads no other conftest).

chDB opens exactly one data directory per process ("EmbeddedServer already initialized with
path ..."), so the whole test session uses one directory and tests isolate by database. A test
whose warehouse is a directory of its own reads it through its sink, or a child process
(``tests/integration/conftest.py::query_warehouse``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.faults import FaultSummary

#: the embedded-warehouse directory this pytest process opens itself, once a test asked for it
OPENED_HERE: set[Path] = set()


@pytest.fixture(scope="session")
def chdb_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one embedded-warehouse directory of this pytest process."""
    directory = tmp_path_factory.mktemp("chdb")
    OPENED_HERE.add(directory.resolve())
    return directory


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(FaultSummary(), "fault-figures")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that start a broker or processes of their own, or a fault, first (each in its
    place otherwise): under ``make test`` (``--dist worksteal``) pytest-xdist splits the tests
    between its workers in order and a worker with none left takes the rest of another's, so the
    longest start early and the short ones fill the end."""
    items.sort(key=lambda item: not _starts_its_own(item))


def _starts_its_own(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(mark) for mark in ("local_stack", "faults"))
