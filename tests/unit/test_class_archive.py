"""The broker's class archive: used when there, recorded by one JVM when not, never half kept."""

from __future__ import annotations

from pathlib import Path

from stream_app.kafka.class_archive import ClassArchive


def a_jdk_and_jars(root: Path, java_name: str = "java") -> tuple[Path, Path]:
    java = root / "jdk" / java_name
    java.parent.mkdir(parents=True, exist_ok=True)
    java.write_bytes(b"a JVM")
    libs = root / "kafka" / "libs"
    libs.mkdir(parents=True, exist_ok=True)
    (libs / "kafka_2.13-4.4.0.jar").write_bytes(b"classes")
    return java, libs


def recorded_by_a_jvm(options: list[str]) -> Path:
    (recording,) = [o.split("=", 1)[1] for o in options if o.startswith("-XX:ArchiveClassesAtExit")]
    Path(recording).write_bytes(b"archive")  # what the JVM writes as it exits
    return Path(recording)


def test_a_jvm_records_the_archive_when_none_exists_and_the_next_ones_use_it(tmp_path):
    java, libs = a_jdk_and_jars(tmp_path)
    first = ClassArchive(java, libs)
    assert first.options() == []  # the storage format, the tools: nothing to use, nothing recorded
    recording = recorded_by_a_jvm(first.options(record=True))
    assert recording.parent == libs.parent and recording != first.path
    first.keep(clean_exit=True)
    assert first.path.read_bytes() == b"archive" and not recording.exists()
    assert f"-XX:SharedArchiveFile={first.path}" in ClassArchive(java, libs).options(record=True)


def test_a_killed_jvm_leaves_no_archive_behind(tmp_path):
    java, libs = a_jdk_and_jars(tmp_path)
    archive = ClassArchive(java, libs)
    recording = recorded_by_a_jvm(archive.options(record=True))
    archive.keep(clean_exit=False)  # SIGKILL, perhaps in the middle of writing it
    assert not recording.exists() and not archive.path.exists()
    assert any(o.startswith("-XX:ArchiveClassesAtExit") for o in archive.options(record=True))


def test_another_jvm_or_other_jars_have_an_archive_of_their_own(tmp_path):
    java, libs = a_jdk_and_jars(tmp_path)
    other_java, _ = a_jdk_and_jars(tmp_path, "java25")
    archive = ClassArchive(java, libs)
    assert ClassArchive(other_java, libs).path != archive.path
    (libs / "kafka-clients-4.4.0.jar").write_bytes(b"more classes")
    assert ClassArchive(java, libs).path != archive.path
