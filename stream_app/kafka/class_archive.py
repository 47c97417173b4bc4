"""The broker's loaded classes, archived once (the JVM's dynamic class data sharing), so that every
later JVM on Kafka's jars (the node, its storage format, its tools) maps them instead of loading
and verifying them again.

The first node launched without an archive records one when it exits cleanly (SIGTERM: Kafka's
own shutdown), into a file of its own that then replaces the archive at once, so that nodes
started side by side never write the same file. An archive is kept per JVM binary and jar set:
a JVM given one it did not make uses none, silently. A fresh node was ready in 3.3-3.8 s with
it, 4.5-4.8 s without (``docs/local-broker.md``). The archive takes ~45 MB beside the jars.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: the JVM's notes on classes it cannot archive (old class file versions) are not news
QUIET = "-Xlog:cds*=error"


class ClassArchive:
    """Where the archive of a JVM binary and a jar directory lives, and the JVM options that use
    it, or record it."""

    def __init__(self, java: Path, libs: Path) -> None:
        binary = java.resolve()
        jars = sorted(f"{jar.name}:{jar.stat().st_size}" for jar in libs.glob("*.jar"))
        identity = f"{binary}:{binary.stat().st_mtime_ns}:{':'.join(jars)}"
        key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.path = libs.parent / f"classes-{key}.jsa"
        self._recording: Path | None = None

    def options(self, *, record: bool = False) -> list[str]:
        """The archive if there is one; else, with ``record``, where this JVM records its own
        (:meth:`keep` moves it in place once the JVM has exited)."""
        if self.path.is_file():
            return [QUIET, f"-XX:SharedArchiveFile={self.path}"]
        if not record:
            return []
        self._recording = self.path.with_name(f"{self.path.stem}.{os.getpid()}-{id(self)}.tmp")
        return [QUIET, f"-XX:ArchiveClassesAtExit={self._recording}"]

    def keep(self, clean_exit: bool) -> None:
        """After the recording JVM exited: its archive becomes the one, unless it was killed
        (possibly while writing it)."""
        recording, self._recording = self._recording, None
        if recording is None or not recording.is_file():
            return
        if clean_exit:
            os.replace(recording, self.path)
        else:
            recording.unlink()
