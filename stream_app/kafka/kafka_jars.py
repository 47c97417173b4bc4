"""Apache Kafka's jars for the local broker: fetched once by Maven into a cache directory.

The pinned ``pom.xml`` beside this module (package data) names the broker, its tools and a log
binding; ``mvn dependency:copy-dependencies`` copies them and every dependency into
``<cache>/libs``. A marker holding the pom's hash says the copy is complete and current, so a
changed pom fetches again. A file lock lets several processes (parallel test sessions) ask at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from importlib.resources import files
from pathlib import Path

from stream_app.errors import BrokerError

KAFKA_VERSION = "4.4.0"
MIN_JAVA = 17  # Kafka 4's minimum for the broker
FETCH_TIMEOUT_S = 900.0
ELSEWHERE = "or point STREAM_APP_BOOTSTRAP_SERVERS at an existing Kafka cluster instead"

log = logging.getLogger(__name__)


def pom_text() -> str:
    return files("stream_app.kafka").joinpath("pom.xml").read_text()


def default_jars_dir() -> Path:
    """``$XDG_CACHE_HOME/stream_app/kafka-<version>`` (``~/.cache`` when unset)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "stream_app" / f"kafka-{KAFKA_VERSION}"


def java_executable() -> Path:
    """``java`` (``$JAVA_HOME/bin/java`` if set), checked to be version 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not Path(found).is_file():
        raise BrokerError(
            f"the local broker (Apache Kafka {KAFKA_VERSION}) needs Java {MIN_JAVA} or newer and "
            f"none was found: install a JRE (Debian/Ubuntu: apt-get install "
            f"openjdk-{MIN_JAVA}-jre-headless) or set JAVA_HOME, {ELSEWHERE}"
        )
    result = subprocess.run(  # noqa: S603  # a fixed argv
        [found, "-version"], capture_output=True, text=True, timeout=30, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr)
    major = 0 if match is None else int(match[1])
    if major == 1 and match is not None and match[2]:  # "1.8.0_392" is Java 8
        major = int(match[2])
    if major < MIN_JAVA:
        raise BrokerError(
            f"the local broker needs Java {MIN_JAVA} or newer; {found} is "
            f"{result.stderr.strip().splitlines()[0] if result.stderr else 'unknown'}: install "
            f"openjdk-{MIN_JAVA}-jre-headless or set JAVA_HOME, {ELSEWHERE}"
        )
    return Path(found)


def kafka_jars(jars_dir: Path | None = None) -> Path:
    """The directory of Kafka's jars (the classpath), fetched by Maven on first use."""
    directory = jars_dir or default_jars_dir()
    libs, marker = directory / "libs", directory / "complete"
    wanted = hashlib.sha256(pom_text().encode()).hexdigest()
    if marker.is_file() and marker.read_text() == wanted:
        return libs
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be fetching: wait for it
        if not (marker.is_file() and marker.read_text() == wanted):
            _fetch(directory, libs)
            marker.write_text(wanted)
    return libs


def _fetch(directory: Path, libs: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            f"the local broker's jars (Apache Kafka {KAFKA_VERSION}) are fetched once by Apache "
            f"Maven, which was not found: install it (Debian/Ubuntu: apt-get install maven), "
            f"or copy the jars into {libs}, {ELSEWHERE}"
        )
    log.warning("fetching Apache Kafka %s with Maven into %s (once)", KAFKA_VERSION, libs)
    with tempfile.TemporaryDirectory(dir=directory) as staging:
        pom = Path(staging) / "pom.xml"
        pom.write_text(pom_text())
        output = Path(staging) / "libs"
        try:
            result = subprocess.run(  # noqa: S603  # a fixed argv
                [
                    mvn,
                    "--batch-mode",
                    "--quiet",
                    "--file",
                    str(pom),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={output}",
                    "-DincludeScope=runtime",
                ],
                capture_output=True,
                text=True,
                timeout=FETCH_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(
                f"Maven did not fetch Kafka's jars in {FETCH_TIMEOUT_S:.0f}s"
            ) from exc
        if result.returncode != 0 or not any(output.glob("kafka_2.13-*.jar")):
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise BrokerError(
                f"Maven could not fetch Apache Kafka {KAFKA_VERSION} (exit {result.returncode}; "
                f"Maven Central must be reachable, {ELSEWHERE}):\n{tail}"
            )
        if libs.exists():
            shutil.rmtree(libs)
        output.rename(libs)
