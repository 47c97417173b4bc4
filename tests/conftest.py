"""Fixtures shared by every suite.

chDB opens exactly one data directory per process ("EmbeddedServer already initialized with
path ..."), so the whole test session uses one directory and tests isolate by database.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def chdb_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one embedded-warehouse directory of this pytest process."""
    return tmp_path_factory.mktemp("chdb")
