"""Read-only SQL is enforced by the engine, through the sink's endpoint and directly."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack

import pytest
from typer.testing import CliRunner

from stream_app.cli import app
from stream_app.errors import WarehouseError
from stream_app.processes import settings_env
from stream_app.settings import Settings
from stream_app.timing import now_ms
from stream_app.warehouse.client import connect
from stream_app.warehouse.endpoint import QueryEndpoint
from stream_app.warehouse.ingest import IngestStats
from stream_app.warehouse.metrics import ingest_metrics
from stream_app.warehouse.schema import PREDICTIONS, create_statements
from stream_app.warehouse.sink import ClickHouseSink
from stream_app.warehouse.sql import ReadOnlySql
from stream_app.warehouse.web import SinkWeb
from tests.integration.conftest import query_warehouse
from tests.integration.serving import running

pytestmark = pytest.mark.integration

#: the engine's own refusals: its parser's on several statements, a setting in a read-only session
MULTI = re.compile(
    r"^(?!.*formatQuery)Code: 62\. DB::Exception: Syntax error \(Multi-statements are not allowed\)"
    r".*\(SYNTAX_ERROR\)$",
    re.DOTALL,
)
READONLY = re.compile(r"^Code: 164\. DB::Exception: .*Cannot modify '\w+' setting.*\(READONLY\)$")
#: this project's refusals, by the statement's parse tree (stream_app.warehouse.statements)
STATEMENT = re.compile(r"^\w+: only SELECT, SHOW, DESCRIBE and EXPLAIN SELECT are served$")
TABLE_FUNCTION = re.compile(r"^table function \w+\(\): only numbers, .* are served$")
OUTFILE = re.compile(r"^INTO OUTFILE writes files on the server: refused on read-only SQL$")
REFUSED = [
    ("INSERT INTO predictions_raw (event_id) VALUES ('x')", STATEMENT),
    ("CREATE TABLE evil (x UInt8) ENGINE = Memory", STATEMENT),
    ("DROP TABLE predictions_raw", STATEMENT),
    ("ALTER TABLE predictions_raw DELETE WHERE 1", STATEMENT),
    ("TRUNCATE TABLE predictions_raw", STATEMENT),
    ("KILL QUERY WHERE 1", STATEMENT),
    ("SYSTEM FLUSH LOGS", STATEMENT),
    ("SYSTEM STOP MERGES", STATEMENT),
    ("SYSTEM STOP TTL MERGES", STATEMENT),
    ("EXPLAIN SYSTEM STOP MERGES", STATEMENT),
    ("SET readonly = 0", STATEMENT),
    ("SET max_execution_time = 0", STATEMENT),
    ("SELECT 1 SETTINGS readonly = 0", READONLY),
    ("SELECT 1 SETTINGS max_memory_usage = 0, max_result_rows = 0", READONLY),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", TABLE_FUNCTION),
    ("SELECT file('/etc/passwd')", re.compile(r"^function file\(\) reads the server's files")),
    ("SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'x String')", TABLE_FUNCTION),
    ("SELECT * FROM remote('127.0.0.1:9000', system.one)", TABLE_FUNCTION),
    ("SELECT * FROM remoteSecure('127.0.0.1:9440', system.one)", TABLE_FUNCTION),
    ("SELECT * FROM s3('http://127.0.0.1:9/b/k.csv', 'CSV', 'x String')", TABLE_FUNCTION),
    ("SELECT * FROM hdfs('hdfs://127.0.0.1:9/k', 'CSV', 'x String')", TABLE_FUNCTION),
    ("SELECT * FROM executable('id', 'TSV', 'x String')", TABLE_FUNCTION),
    ("SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')", TABLE_FUNCTION),
    ("SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')", TABLE_FUNCTION),
    ("SELECT * FROM jdbc('jdbc:x', 't')", TABLE_FUNCTION),
    ("SELECT n.number FROM numbers(2) AS n JOIN file('/etc/passwd') AS f ON 1", TABLE_FUNCTION),
    ("SELECT 1 WHERE 1 IN (SELECT 1 FROM url('http://127.0.0.1:9/', CSV))", TABLE_FUNCTION),
    ("EXPLAIN PLAN SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'x String')", TABLE_FUNCTION),
    ("SELECT 1; DROP TABLE predictions_raw", MULTI),
    ("SELECT 1; SELECT 2", MULTI),
    ("SELECT 1; KILL QUERY WHERE 1", MULTI),
]
#: chDB's ``readonly=1`` lets these write files
OUTFILES = [
    "SELECT 1 INTO/* a comment */OUTFILE '{outfile}'",
    "SELECT 2 INTO\nOUTFILE '{outfile}' TRUNCATE",
    "SHOW TABLES INTO OUTFILE '{outfile}'",
]
ALLOWED = [
    ("SELECT 41 + 1 AS x", {"x": 42}),
    ("WITH 2 AS two SELECT two * 3 AS x", {"x": 6}),
    ("SELECT sum(number) AS x FROM numbers(4)", {"x": 6}),
    ("SELECT 'INTO OUTFILE; KILL QUERY' AS x", {"x": "INTO OUTFILE; KILL QUERY"}),
    ("SHOW TABLES LIKE 'predictions_raw'", {"name": "predictions_raw"}),
    ("DESCRIBE predictions_raw", {"name": "event_id"}),
    ("EXPLAIN SYNTAX SELECT 1", {"explain": "SELECT 1\nFROM system.one"}),
]

Run = Callable[[str, str], bytes]


def through_the_endpoint(port: int) -> Run:
    """Queries posted to the sink's endpoint itself: an endpoint that does not answer fails the
    test (``run_query`` would fall back to a direct connection)."""

    def run(query: str, clickhouse_format: str) -> bytes:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/query?format={clickhouse_format}",
            data=query.encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310  # loopback
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            assert exc.code == 400, exc
            raise WarehouseError(exc.read().decode()) from None

    return run


@pytest.fixture
def warehouse(make_settings):
    settings = make_settings()
    client = connect(settings)
    for statement in create_statements(settings.warehouse_database):
        client.command(statement)
    return settings, client


EVENT_TIME = now_ms()  # one event time for every row: a replay has the same sorting key


def prediction_row(event_id: str, ingested: int) -> tuple:
    return (event_id, "card-1", EVENT_TIME, 1, 2, "1", 0.25, "approve", "w", 0, 7, ingested,
            None, None)  # fmt: skip


def test_replayed_rows_appear_once_in_the_view(warehouse):
    settings, client = warehouse
    sink = ClickHouseSink(client, settings.warehouse_database, PREDICTIONS)
    sink.add([prediction_row(f"e{i}", 1) for i in range(100)])
    sink.flush()
    sink.add([prediction_row(f"e{i}", 2) for i in range(50)])  # a replay of half of them
    sink.flush()
    assert query_warehouse(settings, "SELECT count() FROM predictions_raw")[1][0][0] in (100, 150)
    assert query_warehouse(settings, "SELECT count(), uniqExact(event_id) FROM predictions")[1] == [
        [100, 100]
    ]


def sink_web(settings: Settings, loop) -> SinkWeb:
    """The sink's web server alone, serving read-only SQL on a free port with ``settings``."""
    stats = IngestStats()
    sql = QueryEndpoint.from_settings(
        settings, ReadOnlySql(lambda: connect(settings, readonly=True))
    )
    return SinkWeb(
        socket.create_server(("127.0.0.1", 0)),
        stats.as_dict,
        ingest_metrics(stats),
        sql=sql,
        loop=loop,
    )


@pytest.mark.parametrize("through_endpoint", [True, False], ids=["endpoint", "direct"])
@pytest.mark.local_stack  # the endpoint serves chDB; its gaps and refusals are chDB's
def test_reads_work_and_everything_else_is_refused_by_the_parse_tree(
    warehouse, through_endpoint, tmp_path
):
    settings, _ = warehouse
    outfile = tmp_path / "written.txt"
    with ExitStack() as stack:
        run: Run = ReadOnlySql(lambda: connect(settings, readonly=True)).run
        if through_endpoint:
            web = stack.enter_context(running(lambda loop: sink_web(settings, loop)))
            run = through_the_endpoint(web.port)
        for statement, expected in ALLOWED:
            first_row = json.loads(run(statement, "JSONEachRow").splitlines()[0])
            assert expected.items() <= first_row.items(), (statement, first_row)
        for statement, message in REFUSED:
            with pytest.raises(WarehouseError) as refused:
                run(statement, "CSVWithNames")
            assert message.match(str(refused.value)), (statement, str(refused.value))
        for statement in OUTFILES:
            with pytest.raises(WarehouseError) as refused:
                run(statement.format(outfile=outfile), "CSVWithNames")
            assert OUTFILE.match(str(refused.value)), (statement, str(refused.value))
        assert not outfile.exists()
        with pytest.raises(WarehouseError) as refused:
            run("SELECT 1 FORMAT TSV", "CSVWithNames")
        assert (
            str(refused.value) == "a FORMAT clause: the endpoint answers in the ?format= asked for"
        )
        assert json.loads(run("SELECT count() AS n FROM predictions_raw", "JSONEachRow")) == {
            "n": 0
        }


@pytest.mark.local_stack
def test_a_syntax_error_is_the_parsers_message_about_the_query_sent(warehouse):
    settings, _ = warehouse
    with pytest.raises(WarehouseError) as refused:
        ReadOnlySql(lambda: connect(settings, readonly=True)).run("SELEC 1", "CSVWithNames")
    message = str(refused.value)
    assert message.startswith(
        "Code: 62. DB::Exception: Syntax error: failed at position 7 (1): 1. "
    )
    assert message.endswith(" (SYNTAX_ERROR)")
    assert "formatQuery" not in message and "FORMAT" not in message, message


def test_cli_sql_prints_table_csv_and_json(warehouse, monkeypatch):
    settings, _ = warehouse
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    csv = runner.invoke(app, ["sql", "SELECT 1 AS one, 'a' AS letter", "-o", "csv"])
    assert csv.exit_code == 0, csv.output
    assert csv.stdout.splitlines() == ['"one","letter"', '1,"a"']
    as_json = runner.invoke(app, ["sql", "SELECT 2 AS two", "--output", "json"])
    assert json.loads(as_json.stdout) == {"two": 2}
    table = runner.invoke(app, ["sql", "SELECT 3 AS three"])
    assert "three" in table.stdout and "3" in table.stdout
