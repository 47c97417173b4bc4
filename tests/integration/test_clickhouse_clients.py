"""ClickHouse clients read the embedded warehouse through the sink's endpoint, which speaks
ClickHouse's HTTP interface: clickhouse-connect as it is, every format clients ask for, and
refusals in ClickHouse's error shape; no setting a client sends lifts ``readonly`` or a limit."""

from __future__ import annotations

import csv
import gzip
import io
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request

import clickhouse_connect
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from stream_app.warehouse.client import connect
from tests.integration.test_sql_endpoint import SLOW_WITHIN_ROWS, endpoint

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]  # the endpoint serves chDB

ROWS = [(1, 0.25, "approve"), (2, 0.5, "review"), (3, 0.75, "decline")]
QUERY = "SELECT id, score, decision FROM scores ORDER BY id"


@pytest.fixture
def served(make_settings):
    """Settings whose database holds a table ``scores`` of :data:`ROWS`, and the port of an
    endpoint serving it (with ``sql_token`` if a test sets one)."""

    def serve(**overrides):
        settings = make_settings(**overrides)
        writer = connect(settings)
        database = settings.warehouse_database
        writer.command(f"CREATE DATABASE IF NOT EXISTS {database}")
        writer.command(
            f"CREATE TABLE {database}.scores (id UInt32, score Float64, decision String) "
            "ENGINE = MergeTree ORDER BY id"
        )
        writer.insert(f"{database}.scores", ROWS, column_names=["id", "score", "decision"])
        return settings, endpoint(settings)

    return serve


def get(port: int, **params: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of ``GET /?params``."""
    url = f"http://127.0.0.1:{port}/?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_clickhouse_connect_queries_the_embedded_warehouse(served):
    settings, serving = served()
    with serving as port:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        assert client.query(QUERY).result_rows == ROWS
        frame = client.query_df(QUERY)
        assert list(frame.columns) == ["id", "score", "decision"]
        assert frame.to_dict("records")[1] == {"id": 2, "score": 0.5, "decision": "review"}
        table = client.query_arrow(QUERY)
        assert table.column("score").to_pylist() == [0.25, 0.5, 0.75]
        assert client.command("SELECT 1") == 1
        system = clickhouse_connect.get_client(host="127.0.0.1", port=port, database="system")
        assert system.command("SELECT currentDatabase()") == "system"
        assert client.command("SELECT currentDatabase()") == settings.warehouse_database
        for write in (
            "INSERT INTO scores VALUES (4, 1.0, 'x')",
            "CREATE TABLE evil (x UInt8) ENGINE = Memory",
            "DROP TABLE scores",
        ):
            with pytest.raises(DatabaseError) as refused:
                client.command(write)
            assert refused.value.code == 164, write
            assert refused.value.name == "READONLY", write
            assert "only SELECT, SHOW, DESCRIBE and EXPLAIN SELECT are served" in str(refused.value)
        assert client.command("SELECT count() FROM scores") == len(ROWS)


def test_every_format_clients_ask_for_is_served(served):
    _, serving = served()
    with serving as port:
        answers = {}
        for fmt in (
            "JSON",
            "JSONEachRow",
            "CSV",
            "TabSeparated",
            "RowBinaryWithNamesAndTypes",
            "Native",
            "Arrow",
            "Parquet",
        ):
            status, headers, body = get(port, query=QUERY, default_format=fmt)
            assert status == 200, (fmt, body)
            assert headers["X-ClickHouse-Format"] == fmt
            assert json.loads(headers["X-ClickHouse-Summary"])["result_bytes"] == str(len(body))
            answers[fmt] = body
    assert [tuple(row.values()) for row in json.loads(answers["JSON"])["data"]] == ROWS
    assert json.loads(answers["JSONEachRow"].splitlines()[2]) == dict(
        zip(["id", "score", "decision"], ROWS[2], strict=True)
    )
    assert next(csv.reader(io.StringIO(answers["CSV"].decode()))) == ["1", "0.25", "approve"]
    assert answers["TabSeparated"].decode().splitlines() == [
        "\t".join(map(str, row)) for row in ROWS
    ]
    # 3 columns, named, typed; then the rows
    assert answers["RowBinaryWithNamesAndTypes"].startswith(b"\x03\x02id\x05score\x08decision")
    assert answers["Native"].startswith(b"\x03\x03")  # 3 columns, 3 rows
    arrow = pa.ipc.open_file(answers["Arrow"]).read_all()
    parquet = pq.read_table(pa.BufferReader(answers["Parquet"]))
    for table in (arrow, parquet):
        assert table.to_pylist()[0] == {"id": 1, "score": 0.25, "decision": "approve"}


def test_the_format_clause_database_and_ping(served):
    settings, serving = served()
    with serving as port:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/?default_format=JSON",
            data=f"{QUERY} FORMAT CSVWithNames".encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310  # loopback
            assert response.headers["X-ClickHouse-Format"] == "CSVWithNames"
            assert response.read().decode().splitlines()[:2] == [
                '"id","score","decision"',
                '1,0.25,"approve"',
            ]
        status, _, body = get(port, query="SELECT count() FROM scores", database="system")
        assert status == 404 and b"(UNKNOWN_TABLE)" in body, body
        database = settings.warehouse_database
        assert get(port, query="SELECT count() FROM scores", database=database)[2] == b"3\n"
        compressed = urllib.request.Request(  # as clickhouse-go sends it (Grafana's plugin)
            f"http://127.0.0.1:{port}/?enable_http_compression=1",
            data=gzip.compress(b"SELECT count() FROM scores"),
            headers={"Content-Encoding": "gzip", "Accept-Encoding": "gzip"},
        )
        with urllib.request.urlopen(compressed, timeout=60) as response:  # noqa: S310  # loopback
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(response.read()) == b"3\n"
        for path in ("/ping", "/"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as response:
                assert response.read() == b"Ok.\n"


def test_settings_a_client_sends_lift_neither_readonly_nor_a_limit(served):
    _, serving = served(sql_max_execution_s=1.0, sql_max_result_rows=100)
    with serving as port:
        for lift in (
            {"readonly": "0"},
            {"readonly": "2"},
            {"max_result_rows": "0"},
            {"max_memory_usage": "0"},
            {"max_rows_to_read": "0"},
            {"max_threads": "1"},
        ):
            status, headers, body = get(port, query="SELECT 1", **lift)
            assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "164"), (lift, body)
            assert body.startswith(b"Code: 164. DB::Exception: ") and b"(READONLY)" in body, body
        status, headers, body = get(port, query="SELECT number FROM numbers(101)")
        assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "396"), body
        status, _, body = get(
            port, query="SELECT getSetting('max_result_rows')", max_result_rows="100"
        )
        assert (status, body) == (200, b"100\n")  # a value left as it is: accepted
        # a client's own timeout (Grafana's plugin sends one) is dropped: the endpoint's holds
        status, headers, body = get(port, query=SLOW_WITHIN_ROWS, max_execution_time="0")
        assert (status, headers["X-ClickHouse-Exception-Code"]) == (408, "159"), body
        assert b"maximum: 1000.000 ms" in body, body


def test_what_cannot_be_served_is_refused_in_clickhouses_shape(served):
    _, serving = served()
    with serving as port:
        for params in (
            {"compress": "1"},
            {"decompress": "1"},
            {"param_x": "1"},
        ):
            status, headers, body = get(port, query="SELECT 1", **params)
            assert (status, headers["X-ClickHouse-Exception-Code"]) == (501, "48"), params
            assert body.startswith(b"Code: 48. DB::Exception: ") and body.endswith(
                b"(NOT_IMPLEMENTED)\n"
            ), body
        for off in ("0", "false"):  # asked not to: served
            assert get(port, query="SELECT 1", compress=off)[::2] == (200, b"1\n"), off


def test_the_token_is_asked_of_clickhouse_clients(served):
    token = secrets.token_hex(16)
    _, serving = served(sql_token=token)
    with serving as port:
        with pytest.raises(DatabaseError) as refused:
            clickhouse_connect.get_client(host="127.0.0.1", port=port)
        assert refused.value.code == 516
        with pytest.raises(DatabaseError):
            clickhouse_connect.get_client(host="127.0.0.1", port=port, password=token[::-1])
        bearer = clickhouse_connect.get_client(host="127.0.0.1", port=port, access_token=token)
        assert bearer.command("SELECT count() FROM scores") == len(ROWS)
        basic = clickhouse_connect.get_client(host="127.0.0.1", port=port, password=token)
        assert basic.command("SELECT count() FROM scores") == len(ROWS)
