"""What a machine without Java or Maven is told, and a fetched jar cache is used as it is."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stream_app.errors import BrokerError
from stream_app.kafka.kafka_jars import java_executable, kafka_jars, pom_text


def test_without_java_the_message_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(BrokerError, match=r"openjdk-17-jre-headless.*STREAM_APP_BOOTSTRAP_SERVERS"):
        java_executable()


def test_without_maven_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(BrokerError, match="apt-get install maven"):
        kafka_jars(tmp_path)


def test_a_complete_cache_of_the_same_pom_is_used_without_maven(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "")
    (tmp_path / "complete").write_text(hashlib.sha256(pom_text().encode()).hexdigest())
    assert kafka_jars(tmp_path) == tmp_path / "libs"


def test_a_cache_of_another_pom_is_fetched_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "")
    (tmp_path / "complete").write_text("hash of an older pom")
    with pytest.raises(BrokerError, match="Maven"):
        kafka_jars(tmp_path)
