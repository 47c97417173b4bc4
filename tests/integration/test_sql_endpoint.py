"""The sink's SQL endpoint under abuse: limits the client cannot lift, several queries at once
with a bounded backlog, an optional bearer token, and request bodies aiohttp bounds."""

from __future__ import annotations

import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from stream_app.errors import WarehouseError
from stream_app.processes import ChildProcess, get_json
from stream_app.settings import Settings
from stream_app.warehouse.client import connect
from stream_app.warehouse.sql import FORMATS, ReadOnlySql, query_rows
from tests.integration.conftest import count, wait_for
from tests.integration.serving import running
from tests.integration.test_sink_process import SteadyProducer
from tests.integration.test_sql import sink_web

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]  # the endpoint serves chDB

#: 10¹¹ rows hashed one by one: minutes without a limit (a bare ``count()`` of ``numbers()`` does
#: not materialise its rows: 10¹⁰ of them took 1.2 s on an AMD EPYC host, within the time limits)
HEAVY = "SELECT count() FROM numbers(100000000000) WHERE cityHash64(number) % 7 = 1"
#: 10⁹ rows SipHashed one by one, within ``sql_max_rows_to_read=10**9``: over 30 s on the AMD EPYC
#: host (with cityHash64, 1.5 s: too close to the tests' 1 s limit for a faster host)
SLOW_WITHIN_ROWS = "SELECT count() FROM numbers(1000000000) WHERE sipHash64(number) % 7 = 1"
READ_ALL = 10**12  # sql_max_rows_to_read that lets HEAVY run (to its time limit)


def post(port: int, query: str, token: str | None = None, timeout_s: float = 60) -> tuple[int, str]:
    """Status and body of a query posted to the endpoint."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/query?format=CSVWithNames", data=query.encode(), method="POST"
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310  # loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextmanager
def endpoint(settings: Settings) -> Iterator[int]:
    """The port of the sink's web server alone, serving read-only SQL with ``settings``."""
    client = connect(settings)
    client.command(f"CREATE DATABASE IF NOT EXISTS {settings.warehouse_database}")
    with running(lambda loop: sink_web(settings, loop)) as web:
        yield web.port


@contextmanager
def in_background(port: int, query: str) -> Iterator[list[tuple[int, str]]]:
    """``query`` posted from a thread; its answer in the list once the block has joined it."""
    answers: list[tuple[int, str]] = []
    thread = threading.Thread(target=lambda: answers.append(post(port, query)), daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        thread.join(120)


#: how many of the heavy queries run now (this one excluded)
RUNNING_HEAVY = (
    "SELECT count() FROM system.processes WHERE query LIKE '%numbers(100000000000)%' "
    "AND query NOT LIKE '%system.processes%'"
)


def heavy_running(settings: Settings) -> int:
    """Heavy queries running, seen by a writer session (the endpoint may be too busy)."""
    return int(connect(settings).query(RUNNING_HEAVY).result_rows[0][0])


def test_a_query_past_a_limit_gets_the_engines_message_and_no_setting_lifts_it(make_settings):
    settings = make_settings(
        sql_max_execution_s=1.0,
        sql_max_memory_mb=64,
        sql_max_rows_to_read=10**9,
        sql_max_result_rows=1000,
        sql_max_result_mb=1,
    )
    with endpoint(settings) as port:
        status, body = post(port, SLOW_WITHIN_ROWS)
        assert status == 400 and "(TIMEOUT_EXCEEDED)" in body, body
        assert body.startswith("Code: 159. DB::Exception: Timeout exceeded: elapsed "), body
        status, body = post(port, HEAVY)
        assert status == 400 and "(TOO_MANY_ROWS)" in body, body
        status, body = post(port, "SELECT number FROM numbers(1001)")
        assert status == 400 and "(TOO_MANY_ROWS_OR_BYTES)" in body, body
        status, body = post(port, "SELECT length(groupArray(number)) FROM numbers(100000000)")
        assert status == 400 and "(MEMORY_LIMIT_EXCEEDED)" in body, body
        status, body = post(port, "SELECT repeat('x', 2000) FROM numbers(999)")
        assert (status, body) == (400, f"the answer is over {2**20} bytes: refused")
        for lift in ("max_execution_time = 0", "max_memory_usage = 0", "readonly = 0"):
            status, body = post(port, f"SELECT 1 SETTINGS {lift}")
            assert status == 400 and "(READONLY)" in body, (lift, body)
        status, body = post(port, "SELECT getSetting('max_execution_time') AS t")
        assert (status, body) == (200, '"t"\n1\n')


def test_a_query_longer_than_the_limit_is_refused_by_aiohttp_and_the_engine(make_settings):
    settings = make_settings(sql_max_query_bytes=2048)
    with endpoint(settings) as port:
        padded = "SELECT 1" + " " * 3000
        assert post(port, padded)[0] == 413
        with pytest.raises(WarehouseError, match=r"\(SYNTAX_ERROR\)$") as refused:
            connect_and_run(settings, "SELECT '" + "x" * 2100 + "'")
        assert "Max query size exceeded" in str(refused.value)
        for length in ("-1", "abc"):  # a bad Content-Length: 400 at once, no body read
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.sendall(
                    b"POST /query HTTP/1.1\r\nHost: x\r\n"
                    + f"Content-Length: {length}\r\n\r\n".encode()
                    + b"x" * 100_000
                )
                assert raw.recv(64).split(b" ")[1] == b"400", length


def connect_and_run(settings: Settings, query: str) -> bytes:
    """A query on a read-only session opened here: the engine's own ``max_query_size``."""
    return ReadOnlySql(lambda: connect(settings, readonly=True)).run(query, FORMATS["csv"])


def test_a_slow_query_holds_no_other_and_the_backlog_is_bounded(make_settings):
    settings = make_settings(
        sql_max_execution_s=20.0,
        sql_max_rows_to_read=READ_ALL,
        sql_max_concurrent=2,
        sql_max_waiting=0,
    )
    with endpoint(settings) as port, in_background(port, HEAVY) as slow:
        wait_for(lambda: heavy_running(settings) == 1, 10, "slow")
        started = time.monotonic()
        assert post(port, "SELECT 40 + 2 AS x", timeout_s=10) == (200, '"x"\n42\n')
        assert time.monotonic() - started < 2.0
        with in_background(port, HEAVY.replace("count()", "max(number)")) as second:
            wait_for(lambda: heavy_running(settings) == 2, 10, "both")
            started = time.monotonic()
            status, body = post(port, "SELECT 1", timeout_s=10)
            assert (status, body) == (503, "too many queries: retry later")
            assert time.monotonic() - started < 1.0
    assert [status for status, _ in slow + second] == [400, 400]  # stopped by the time limit


def test_clients_that_never_send_their_body_hold_no_place(make_settings):
    """A place is taken once the body is read: stalled uploads cannot exhaust the endpoint."""
    settings = make_settings(sql_max_concurrent=1, sql_max_waiting=0)
    with endpoint(settings) as port, ExitStack() as stalled:
        for _ in range(3):  # each promises 100 bytes and sends 6
            raw = stalled.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            raw.sendall(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nSELECT")
        time.sleep(1.0)  # their handlers are waiting for the rest
        assert post(port, "SELECT 1 AS x", timeout_s=10) == (200, '"x"\n1\n')


def test_a_token_is_required_once_set_and_the_cli_sends_it(make_settings):
    token = secrets.token_hex(16)
    settings = make_settings(sql_token=token)
    assert token not in repr(settings) and token not in str(settings.model_dump())
    with endpoint(settings) as port:
        assert post(port, "SELECT 1")[0] == 401
        assert post(port, "SELECT 1", token=token[::-1])[0] == 401
        assert post(port, "SELECT 1 AS x", token=token) == (200, '"x"\n1\n')
        served = settings.model_copy(update={"sql_port": port})
        assert query_rows(served, "SELECT 7 AS n") == (["n"], [[7]])
        tokenless = served.model_copy(update={"sql_token": None})
        with pytest.raises(WarehouseError, match=r"^a bearer token is required$"):
            query_rows(tokenless, "SELECT 7 AS n")


def test_the_sink_keeps_ingesting_while_a_heavy_query_runs_to_its_limit(make_settings, tmp_path):
    settings = make_settings(
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}",
        sql_max_execution_s=15.0,
        sql_max_rows_to_read=READ_ALL,
    )
    sink = ChildProcess("sink-heavy-query", ["sink"], settings, tmp_path)
    settings = settings.model_copy(update={"sql_port": sink.web_port()})

    def stored() -> int:
        sink.check_alive()
        return int(query_rows(settings, "SELECT count() FROM events")[1][0][0])

    producer = SteadyProducer(settings)
    try:
        wait_for(lambda: get_json(f"{settings.sql_url}/health") is not None, 60, "sink serving")
        producer.start()
        wait_for(lambda: stored() > 0, 60, "the sink storing events")
        with in_background(sink.web_port(), HEAVY) as heavy:
            wait_for(lambda: count(settings, RUNNING_HEAVY) == 1, 10, "the heavy query running")
            before = stored()
            wait_for(lambda: stored() > before + 100, 10, "rows stored during the heavy query")
            assert not heavy, "the heavy query ended before the ingest was measured"
        assert heavy[0][0] == 400 and "(TIMEOUT_EXCEEDED)" in heavy[0][1], heavy
        sink.check_alive()
    finally:
        producer.stop()
        exit_code = sink.stop()
    assert exit_code == 0
