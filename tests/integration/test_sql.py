"""Read-only SQL is enforced by the engine, through the sink's endpoint and directly."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack

import pytest
from typer.testing import CliRunner

from stream_app.cli import app
from stream_app.errors import WarehouseError
from stream_app.processes import settings_env
from stream_app.timing import now_ms
from stream_app.warehouse.client import connect
from stream_app.warehouse.ingest import IngestStats
from stream_app.warehouse.metrics import ingest_metrics
from stream_app.warehouse.schema import PREDICTIONS, create_statements
from stream_app.warehouse.sink import ClickHouseSink
from stream_app.warehouse.sql import OUTFILE_REFUSED, ReadOnlySql, query_rows
from stream_app.warehouse.web import SinkWeb
from tests.integration.serving import running

pytestmark = pytest.mark.integration

#: the engine's own refusals: a write in a read-only session, and its parser's on several statements
READONLY = re.compile(r"^Code: 164\. DB::Exception: .*\(READONLY\)$", re.DOTALL)
MULTI = re.compile(
    r"^Code: 62\. DB::Exception: Syntax error \(Multi-statements are not allowed\)"
    r".*\(SYNTAX_ERROR\)$",
    re.DOTALL,
)
REFUSED = [
    ("INSERT INTO predictions_raw (event_id) VALUES ('x')", READONLY),
    ("CREATE TABLE evil (x UInt8) ENGINE = Memory", READONLY),
    ("DROP TABLE predictions_raw", READONLY),
    ("ALTER TABLE predictions_raw DELETE WHERE 1", READONLY),
    ("TRUNCATE TABLE predictions_raw", READONLY),
    ("SYSTEM FLUSH LOGS", READONLY),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", READONLY),
    ("SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'x String')", READONLY),
    ("SET readonly = 0", READONLY),
    ("SELECT 1; DROP TABLE predictions_raw", MULTI),
    ("SELECT 1; SELECT 2", MULTI),
]
#: refused by this project (chDB's ``readonly=1`` lets them write files), with its own message
OUTFILES = [
    "SELECT 1 INTO/* a comment */OUTFILE '{outfile}'",
    "SELECT 2 INTO\nOUTFILE '{outfile}' TRUNCATE",
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
    assert query_rows(settings, "SELECT count() FROM predictions_raw")[1][0][0] in (100, 150)
    assert query_rows(settings, "SELECT count(), uniqExact(event_id) FROM predictions")[1] == [
        [100, 100]
    ]


def sink_web(sql: ReadOnlySql, loop) -> SinkWeb:
    """The sink's web server alone, serving read-only SQL on a free port."""
    stats = IngestStats()
    return SinkWeb("127.0.0.1", 0, stats.as_dict, ingest_metrics(stats), sql, loop=loop)


@pytest.mark.parametrize("through_endpoint", [True, False], ids=["endpoint", "direct"])
@pytest.mark.local_stack  # the endpoint serves chDB; its gaps and refusals are chDB's
def test_reads_work_and_writes_are_refused_by_the_engine(warehouse, through_endpoint, tmp_path):
    settings, _ = warehouse
    outfile = tmp_path / "written.txt"
    sql = ReadOnlySql(lambda: connect(settings, readonly=True))
    with ExitStack() as stack:
        run: Run = sql.run
        if through_endpoint:
            web = stack.enter_context(running(lambda loop: sink_web(sql, loop)))
            run = through_the_endpoint(web.port)
        assert json.loads(run("SELECT 41 + 1 AS x", "JSONEachRow")) == {"x": 42}
        for statement, engine_message in REFUSED:
            with pytest.raises(WarehouseError) as refused:
                run(statement, "CSVWithNames")
            assert engine_message.match(str(refused.value)), (statement, str(refused.value))
        for statement in OUTFILES:
            with pytest.raises(WarehouseError) as refused:
                run(statement.format(outfile=outfile), "CSVWithNames")
            assert str(refused.value) == OUTFILE_REFUSED
        assert not outfile.exists()
        assert json.loads(run("SELECT 'INTO OUTFILE' AS s", "JSONEachRow")) == {"s": "INTO OUTFILE"}
        assert json.loads(run("SELECT count() AS n FROM predictions_raw", "JSONEachRow")) == {
            "n": 0
        }


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
