"""A sink that dies between an insert and the commit of its offsets replays those records on
restart: the raw table holds them twice, the view they are queried through once."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Consumer

from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.commit import commit_offsets
from stream_app.warehouse import ingest as ingest_module
from stream_app.warehouse.client import connect
from stream_app.warehouse.service import build_ingest
from tests.integration.conftest import (
    assert_ledger,
    committed,
    count,
    in_thread,
    wait_for,
    wait_until_stored,
)

pytestmark = pytest.mark.integration


class Crash(Exception):
    """The sink dies here: its rows are inserted, their offsets not committed."""


def test_a_sink_that_dies_between_an_insert_and_its_commit_stores_each_event_once_on_restart(
    make_settings, running_worker, running_sink, monkeypatch
):
    settings = make_settings()
    options = ProduceOptions(events=2000, bad_fraction=0.0, seed=31)
    with running_worker(settings) as worker:
        report = produce(settings, options)
        wait_for(lambda: worker.loop.stats.scored >= report.valid, 60, "every event scored")
    ingest = build_ingest(settings)  # creates the tables
    # no background merge folds the replayed rows away before they are counted
    connect(settings).command(f"SYSTEM STOP MERGES {settings.warehouse_database}.predictions_raw")

    def commit_or_crash(
        consumer: Consumer, offsets: dict[tuple[str, int], int], **options: Any
    ) -> bool:
        if count(settings, "SELECT count() FROM predictions_raw") >= report.valid:
            raise Crash  # the insert of the last predictions returned; their commit never comes
        return commit_offsets(consumer, offsets, **options)

    monkeypatch.setattr(ingest_module, "commit_offsets", commit_or_crash)
    with pytest.raises(Crash), in_thread(ingest) as sink:
        wait_for(lambda: not sink.thread.is_alive(), 60, "the sink dying at a commit")
    monkeypatch.undo()
    with running_sink(settings):
        wait_until_stored(settings, report)
        wait_for(
            lambda: committed(settings, settings.sink_group) == options.events,
            60,
            "every offset committed after the restart",
        )
    assert count(settings, "SELECT count() FROM predictions_raw") > report.valid  # the replay
    assert_ledger(settings, report)
