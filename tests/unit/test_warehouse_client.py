"""DSN redaction: passwords never reach messages or logs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.errors import WarehouseError
from stream_app.settings import Settings
from stream_app.warehouse.client import chdb_directory, connect, redact

users = st.text(st.sampled_from("abcXYZ019_-."), min_size=1, max_size=12)
passwords = st.text(st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=20)
hosts = st.sampled_from(["ch", "localhost:8123", "clickhouse.internal:8443/analytics", "10.0.0.1"])
schemes = st.sampled_from(["http://", "https://", "clickhouse://", ""])


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("http://user:s3cret@host:8123/db", "http://user:***@host:8123/db"),
        ("https://u:p@ss:w@rd@host", "https://u:***@host"),
        ("http://user@host:8123", "http://user@host:8123"),
        ("http://host:8123/db", "http://host:8123/db"),
        ("chdb:///var/lib/warehouse", "chdb:///var/lib/warehouse"),
        ("default:s3cret@host:8123", "default:***@host:8123"),
    ],
)
def test_known_forms(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown


@settings(deadline=None, max_examples=50)
@given(schemes, users, passwords, hosts)
def test_password_is_replaced_whatever_it_contains(
    scheme: str, user: str, password: str, host: str
) -> None:
    assert redact(f"{scheme}{user}:{password}@{host}") == f"{scheme}{user}:***@{host}"


def test_chdb_directory_is_absolute() -> None:
    assert chdb_directory("chdb://relative/dir").is_absolute()
    assert chdb_directory("chdb:///abs/dir").as_posix() == "/abs/dir"


@pytest.mark.parametrize(
    ("dsn", "pool"),
    [
        ("https://127.0.0.1:9/", "HTTPSConnectionPool"),
        ("http://127.0.0.1:9/", "HTTPConnectionPool"),
    ],
)
def test_an_https_dsn_speaks_tls_whatever_its_port(dsn: str, pool: str) -> None:
    """clickhouse-connect takes TLS from the port (443, 8443), not from the DSN's scheme: an
    ``https://`` DSN on another port spoke plain HTTP, its password in clear."""
    with pytest.raises(WarehouseError) as raised:
        connect(Settings(warehouse_dsn=dsn))
    assert pool in str(raised.value)
