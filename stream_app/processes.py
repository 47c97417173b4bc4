"""Child processes of the demo and tests: start ``stream-app`` commands, stop them cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from stream_app.errors import StreamAppError
from stream_app.port_file import read_port
from stream_app.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that reproduce ``settings`` in a child process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(exclude={"topics"}).items():
        if value is None:
            continue
        env[f"STREAM_APP_{name.upper()}"] = _env_value(value)
    for name, value in settings.topics.model_dump().items():
        env[f"STREAM_APP_TOPICS__{name.upper()}"] = str(value)
    return env


def _env_value(value: object) -> str:
    """A setting as the environment gives it: secrets revealed, maps as JSON."""
    if isinstance(value, dict):
        return json.dumps({key: _env_value(item) for key, item in value.items()})
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


class ChildProcess:
    """``python -m stream_app <command>`` with its output in a log file.

    A sink or worker child writes the port its web server listens on to ``<name>.port`` beside
    the log (:mod:`stream_app.port_file`): with ``sql_port`` or ``worker_web_port`` 0 it binds a
    free one, and :meth:`web_port` tells which once the child serves its pages.
    """

    def __init__(self, name: str, command: list[str], settings: Settings, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.port_path = log_dir / f"{name}.port"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.port_path.unlink(missing_ok=True)  # a previous child's port is not this one's
        self._host = settings.sql_host
        self._port: int | None = None
        settings = settings.model_copy(update={"web_port_file": self.port_path})
        env = {**os.environ, **settings_env(settings)}
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(  # noqa: S603  # our own interpreter and module
                [sys.executable, "-m", "stream_app", "--log-level", "info", *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
            raise StreamAppError(
                f"{self.name} exited with code {self._process.returncode}; "
                f"last lines of {self.log_path}:\n" + "\n".join(tail)
            )

    def bound_port(self) -> int | None:
        """The port the child bound for its pages, or None while it has not: it answers there
        from the start, "starting" (:mod:`stream_app.startup_web`) until its service serves."""
        return read_port(self.port_path)

    def web_port(self, timeout_s: float = 90.0) -> int:
        """The port of the child's pages once its service serves them, past its start (it
        exits first: an error)."""
        if self._port is not None:
            return self._port

        found: list[int] = []

        def serving() -> bool:
            self.check_alive()
            port = self.bound_port()
            if port is None:
                return False
            alive = get_json(f"http://{self._host}:{port}/healthz")
            found.extend([port] if alive and not alive.get("starting") else [])
            return bool(found)

        wait_until(serving, timeout_s, f"{self.name} to serve its pages")
        self._port = found[0]
        return self._port

    def web_url(self, path: str = "", timeout_s: float = 90.0) -> str:
        """``http://<sql_host>:<web port><path>`` once the child serves."""
        return f"http://{self._host}:{self.web_port(timeout_s)}{path}"

    def kill(self) -> None:
        """SIGKILL: no flush, no commit (for crash tests)."""
        self._process.kill()
        self._process.wait()

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        if self.alive():
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        return self._process.returncode


def get_json(url: str, timeout_s: float = 2.0) -> Any:
    """GET a JSON document, or ``None`` if nothing answers there yet. An error status with a JSON
    body (``/health`` answering 503 with its reasons) still returns the document."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310  # loopback
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return json.loads(exc.read())
        except json.JSONDecodeError:
            return None
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise StreamAppError(f"timed out after {timeout_s:.0f}s waiting for {what}")
