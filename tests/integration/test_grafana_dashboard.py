"""Every query of the Grafana dashboard (``grafana/dashboards/stream_app.json``: its panels and its
annotations) runs on the embedded warehouse after a short run, through the sink's ClickHouse HTTP
interface as the ``grafana-clickhouse-datasource`` plugin would send it, its macros expanded here
the way the plugin expands them (:func:`expand`)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from stream_app.devtools.produce import ProduceOptions, produce
from tests.integration.conftest import count, serving_sink, wait_for, wait_until_stored

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).parents[2] / "grafana" / "dashboards" / "stream_app.json"
INTERVAL_S = 10
#: the panels whose tables the run fills: each must answer rows, not only run
FILLED = {"Events scored per second", "Decision latency (ms, produce → scored)",
          "Score distribution per model version", "Live quality per model version (hourly, "
          "event time)", "Alerts per rule", "Alert precision per rule (labelled alerts)",
          "Dead letters by reason"}  # fmt: skip


def expand(sql: str, start_s: int, end_s: int, interval_s: int = INTERVAL_S) -> str:
    """The plugin's macros as it expands them for a time range of epoch seconds
    [``start_s``, ``end_s``] and a panel interval of ``interval_s``.

    >>> expand("WHERE $__timeFilter(t) GROUP BY $__timeInterval(t)", 1, 2)
    'WHERE t >= toDateTime(1) AND t <= toDateTime(2) GROUP BY toStartOfInterval(toDateTime(t), INTERVAL 10 second)'
    """  # noqa: E501
    sql = re.sub(
        r"\$__timeFilter\(([^)]+)\)", rf"\1 >= toDateTime({start_s}) AND \1 <= toDateTime({end_s})",
        sql,
    )  # fmt: skip
    sql = re.sub(
        r"\$__timeInterval\(([^)]+)\)",
        rf"toStartOfInterval(toDateTime(\1), INTERVAL {interval_s} second)",
        sql,
    )
    sql = sql.replace("$__interval_s", str(interval_s))
    assert "$__" not in sql, f"a macro this test does not expand: {sql}"
    return sql


def dashboard_queries() -> dict[str, str]:
    """Every query of the dashboard by panel or annotation name (a panel's first query by its
    title, a further one by its title and refId)."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    queries = {
        panel["title"] if at == 0 else f"{panel['title']} · {target['refId']}": target["rawSql"]
        for panel in dashboard["panels"]
        for at, target in enumerate(panel["targets"])
    }
    for annotation in dashboard["annotations"]["list"]:
        if "target" in annotation:
            queries[f"annotation: {annotation['name']}"] = annotation["target"]["rawSql"]
    return queries


def test_every_dashboard_query_runs_on_the_embedded_warehouse(
    make_settings, running_worker, tmp_path
):
    queries = dashboard_queries()
    assert set(queries) >= FILLED and len(queries) >= 10
    settings = make_settings(warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}")
    with serving_sink(settings, tmp_path) as (sink, settings):
        start_s = int(time.time()) - 60
        options = ProduceOptions(events=2000, bad_fraction=0.03, fraud_rate=0.05, labels=True)
        with running_worker(settings):
            report = produce(settings, options)
            wait_until_stored(settings, report)
        wait_for(lambda: count(settings, "SELECT count() FROM labels") > 0, 60, "labels stored")
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=sink.web_port(), database=settings.warehouse_database
        )
        # the quality views' windows are event time: the generator's run starts near now
        answers = {
            name: client.query(expand(sql, start_s - 86_400, int(time.time()) + 86_400))
            for name, sql in queries.items()
        }
    empty = sorted(name for name in FILLED if not answers[name].result_rows)
    assert not empty, f"no rows: {empty}"
    predictions = sum(row[1] for row in answers["Events scored per second"].result_rows)
    assert round(predictions * INTERVAL_S) == report.valid
    dead = dict(answers["Dead letters by reason"].result_rows)
    assert sum(dead.values()) == report.malformed
