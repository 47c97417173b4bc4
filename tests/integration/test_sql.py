"""Read-only SQL is enforced by the engine, through the sink's endpoint and directly."""

from __future__ import annotations

import json
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
from stream_app.warehouse.sql import ReadOnlySql, query_rows, run_query
from stream_app.warehouse.web import SinkWeb
from tests.integration.serving import running

pytestmark = pytest.mark.integration

REFUSED = [
    "INSERT INTO predictions_raw (event_id) VALUES ('x')",
    "CREATE TABLE evil (x UInt8) ENGINE = Memory",
    "DROP TABLE predictions_raw",
    "ALTER TABLE predictions_raw DELETE WHERE 1",
    "TRUNCATE TABLE predictions_raw",
    "SYSTEM FLUSH LOGS",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'x String')",
    "SET readonly = 0",
    "SELECT 1; DROP TABLE predictions_raw",
    "SELECT 1; SELECT 2",
    "SELECT 1 INTO/* a comment */OUTFILE '{outfile}'",
    "SELECT 2 INTO\nOUTFILE '{outfile}' TRUNCATE",
]


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


def sink_web(settings, loop) -> SinkWeb:
    """The sink's web server alone, serving read-only SQL on the settings' port."""
    stats = IngestStats()
    sql = ReadOnlySql(lambda: connect(settings, readonly=True))
    metrics = ingest_metrics(stats)
    return SinkWeb(settings.sql_host, settings.sql_port, stats.as_dict, metrics, sql, loop=loop)


@pytest.mark.parametrize("through_endpoint", [True, False])
def test_reads_work_and_writes_are_refused_by_the_engine(warehouse, through_endpoint, tmp_path):
    settings, _ = warehouse
    outfile = tmp_path / "written.txt"
    with ExitStack() as stack:
        if through_endpoint:
            stack.enter_context(running(lambda loop: sink_web(settings, loop)))
        assert json.loads(run_query(settings, "SELECT 41 + 1 AS x", "JSONEachRow")) == {"x": 42}
        for statement in REFUSED:
            with pytest.raises(WarehouseError) as refused:
                run_query(settings, statement.format(outfile=outfile), "CSVWithNames")
            message = str(refused.value)
            assert any(sign in message for sign in ("READONLY", "Multi-statements", "OUTFILE")), (
                statement,
                message,
            )
        assert not outfile.exists()
        assert json.loads(run_query(settings, "SELECT 'INTO OUTFILE' AS s", "JSONEachRow")) == {
            "s": "INTO OUTFILE"
        }
        assert query_rows(settings, "SELECT count() FROM predictions_raw")[1] == [[0]]


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
