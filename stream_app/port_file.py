"""How a process tells its parent the port its web server got: no port is picked in advance.

A port picked free by the parent, closed, then bound by the child can be taken by any process in
between. Instead the child binds port 0 (the system picks a free port and keeps it bound) and
writes the port it got to the file ``web_port_file`` names; the parent waits for that file.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "sink.port"
>>> write_port(path, 8124)
>>> read_port(path)
8124
"""

from __future__ import annotations

import os
from pathlib import Path


def write_port(path: Path, port: int) -> None:
    """Write ``port`` to ``path`` at once (a reader never sees a half-written file)."""
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(f"{port}\n")
    os.replace(partial, path)


def read_port(path: Path) -> int | None:
    """The port written to ``path``, or None while nothing is."""
    try:
        return int(path.read_text())
    except FileNotFoundError:
        return None
