"""Every sink obeys the same contract, and the batching base keeps what it could not write."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.errors import RowsRefused
from stream_app.sinks.base import BatchingSink, Row, Sink
from stream_app.timing import now_ms
from stream_app.warehouse.schema import PREDICTIONS, create_statements
from stream_app.warehouse.sink import ClickHouseSink
from tests.unit.support import concrete_subclasses


@dataclass(frozen=True)
class SinkKit:
    """Builds a sink over a fresh database and reaches behind it: count rows, break, repair."""

    make: Callable[[Client, str], Sink]
    row: Callable[[int], Row]
    stored: Callable[[Client, str], int]
    break_: Callable[[Client, str], None]
    repair: Callable[[Client, str], None]


#: yesterday's UTC midnight: inside the tables' retention whatever the clock says
T0 = now_ms() // 86_400_000 * 86_400_000 - 86_400_000


def _clickhouse_sink(client: Client, database: str) -> Sink:
    for statement in create_statements(database):
        client.command(statement)
    return ClickHouseSink(client, database, PREDICTIONS)


def _column_value(kind: str, i: int) -> object:
    """A value of ClickHouse type ``kind`` for row ``i`` (nullable: None every other row)."""
    if kind.startswith(("Nullable(", "LowCardinality(Nullable(")) and i % 2:
        return None
    if "DateTime64" in kind:
        return T0 + i  # epoch milliseconds, as the sink's row mappers produce
    if "Float" in kind:
        return i / 4
    if "Int" in kind:
        return i
    if "String" in kind:
        return f"v{i}"
    raise AssertionError(f"no test value for column type {kind}: extend _column_value")


def _prediction_row(i: int) -> Row:
    """A row of the predictions table, built from its column list (follows schema changes)."""
    return tuple(_column_value(kind, i) for _, kind in PREDICTIONS.columns)


def _stored(client: Client, database: str) -> int:
    query = f"SELECT count() FROM {database}.{PREDICTIONS.raw}"  # noqa: S608  # test's own names
    return int(client.query(query).result_rows[0][0])


def _hide_table(client: Client, database: str) -> None:
    client.command(f"RENAME TABLE {database}.{PREDICTIONS.raw} TO {database}.hidden")


def _restore_table(client: Client, database: str) -> None:
    client.command(f"RENAME TABLE {database}.hidden TO {database}.{PREDICTIONS.raw}")


KITS: dict[type, SinkKit] = {
    ClickHouseSink: SinkKit(
        _clickhouse_sink, _prediction_row, _stored, _hide_table, _restore_table
    ),
}

SINKS = concrete_subclasses(Sink)


def test_every_sink_has_a_kit() -> None:
    assert ClickHouseSink in SINKS
    missing = [c.__qualname__ for c in SINKS if c not in KITS]
    assert not missing, f"add these sinks to KITS so they go through the contract: {missing}"


@pytest.fixture(params=SINKS, ids=lambda c: c.__name__)
def kit(request: pytest.FixtureRequest) -> SinkKit:
    return KITS[request.param]


def test_add_flush_pending(kit: SinkKit, chdb_client: Client, database: str) -> None:
    sink = kit.make(chdb_client, database)
    assert sink.pending == 0
    assert sink.flush() == 0
    sink.add([kit.row(i) for i in range(3)])
    sink.add([kit.row(i) for i in range(3, 5)])
    assert sink.pending == 5
    assert kit.stored(chdb_client, database) == 0, "add must not write"
    assert sink.flush() == 5
    assert sink.pending == 0
    assert kit.stored(chdb_client, database) == 5
    assert sink.flush() == 0
    assert kit.stored(chdb_client, database) == 5


def test_failed_write_keeps_rows_pending(kit: SinkKit, chdb_client: Client, database: str) -> None:
    sink = kit.make(chdb_client, database)
    sink.add([kit.row(i) for i in range(4)])
    kit.break_(chdb_client, database)
    with pytest.raises(Exception):  # noqa: B017  # whatever the destination raises
        sink.flush()
    assert sink.pending == 4
    sink.add([kit.row(4)])
    kit.repair(chdb_client, database)
    assert kit.stored(chdb_client, database) == 0
    assert sink.flush() == 5
    assert sink.pending == 0
    assert kit.stored(chdb_client, database) == 5


class RecordingSink(BatchingSink):
    """A batching sink whose ``write`` records batches, fails on request, refuses some rows."""

    def __init__(self, refused: frozenset[Row] = frozenset()) -> None:
        super().__init__()
        self.batches: list[list[Row]] = []
        self.parked: list[Row] = []
        self.fail_with: BaseException | None = None
        self.closed = False
        self._refused = refused

    def close(self) -> None:
        self.closed = True

    def write(self, rows: list[Row]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        if self._refused.intersection(rows):
            raise RowsRefused("refused")
        self.batches.append(list(rows))

    def park(self, row: Row, refusal: RowsRefused) -> None:
        self.parked.append(row)


def test_batching_sink_parks_only_the_rows_refused_and_writes_the_rest() -> None:
    rows = [(i,) for i in range(20)]
    sink = RecordingSink(refused=frozenset({(3,), (4,), (17,)}))
    sink.add(rows)
    assert sink.flush() == 17
    assert sink.parked == [(3,), (4,), (17,)]
    assert sink.rejected == 3
    assert [row for batch in sink.batches for row in batch] == [
        r for r in rows if r not in {(3,), (4,), (17,)}
    ]
    assert sink.pending == 0


def test_discard_drops_what_is_buffered() -> None:
    sink = RecordingSink()
    sink.add([(1,), (2,)])
    assert sink.discard() == 2
    assert sink.pending == 0
    assert sink.flush() == 0
    assert sink.batches == []


def test_batching_sink_writes_one_batch_per_flush_in_order() -> None:
    sink = RecordingSink()
    assert sink.flush() == 0
    assert sink.batches == [], "an empty flush must not call write"
    sink.add([(1,), (2,)])
    sink.add([(3,)])
    assert sink.flush() == 3
    assert sink.batches == [[(1,), (2,), (3,)]]
    assert sink.pending == 0


@pytest.mark.parametrize("error", [OSError("disk"), KeyboardInterrupt()], ids=type)
def test_batching_sink_keeps_rows_on_any_failure(error: BaseException) -> None:
    sink = RecordingSink()
    sink.add([(1,), (2,)])
    sink.fail_with = error
    with pytest.raises(type(error)):
        sink.flush()
    assert sink.pending == 2
    sink.add([(3,)])
    sink.fail_with = None
    assert sink.flush() == 3
    assert sink.batches == [[(1,), (2,), (3,)]]


Operation = tuple[str, int]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 5)),
        st.tuples(st.sampled_from(["flush", "fail"]), st.just(0)),
    ),
    max_size=30,
)


@settings(deadline=None, max_examples=50)
@given(operations)
def test_batching_sink_never_loses_or_duplicates_rows(ops: Sequence[Operation]) -> None:
    """Whatever the interleaving of adds, flushes and failed flushes: every row once, in order."""
    sink = RecordingSink()
    added: list[Row] = []
    for op, count in ops:
        if op == "add":
            rows = [(len(added) + i,) for i in range(count)]
            sink.add(rows)
            added.extend(rows)
        elif op == "flush":
            before = sink.pending
            assert sink.flush() == before
        else:
            sink.fail_with = RuntimeError("down")
            if sink.pending:
                with pytest.raises(RuntimeError):
                    sink.flush()
            else:
                assert sink.flush() == 0
            sink.fail_with = None
        written = [row for batch in sink.batches for row in batch]
        assert written + added[len(written) :] == added
        assert sink.pending == len(added) - len(written)
    sink.flush()
    assert [row for batch in sink.batches for row in batch] == added


def test_clickhouse_sink_stores_epoch_milliseconds_exactly(
    chdb_client: Client, database: str
) -> None:
    """Time columns arrive as epoch milliseconds (ints) and must not be read as seconds."""
    sink = _clickhouse_sink(chdb_client, database)
    sink.add([_prediction_row(123)])
    sink.flush()
    view = f"{database}.{PREDICTIONS.view}"
    query = f"SELECT toUnixTimestamp64Milli(event_time) FROM {view}"  # noqa: S608
    assert chdb_client.query(query).result_rows == [(T0 + 123,)]


def test_clickhouse_sink_writes_a_flush_across_more_partitions_than_one_insert_takes(
    chdb_client: Client, database: str
) -> None:
    """150 months in one flush: the engine takes at most 100 partitions per INSERT block."""
    sink = _clickhouse_sink(chdb_client, database)
    at = PREDICTIONS.column_names.index("event_time")
    month_ms = 31 * 86_400_000
    rows = [
        (*row[:at], T0 + i * month_ms, *row[at + 1 :])
        for i, row in enumerate(_prediction_row(i) for i in range(150))
    ]
    sink.add(rows)
    assert sink.flush() == 150
    view = f"{database}.{PREDICTIONS.view}"
    query = f"SELECT count(), uniqExact(toYYYYMM(event_time)) FROM {view}"  # noqa: S608
    assert chdb_client.query(query).result_rows == [(150, 150)]
