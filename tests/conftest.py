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
    """On pytest-xdist workers (``make test``: two, ``--dist loadgroup``): the tests that start
    a broker or processes of their own, or measure, run one after another on one of them; the
    rest spread over both. Without ``-n`` the group marks change nothing."""
    for item in items:
        if item.get_closest_marker("local_stack") or item.get_closest_marker("faults"):
            item.add_marker(pytest.mark.xdist_group("own-stack"))
