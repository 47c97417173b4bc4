"""The retrainer's questions to the warehouse: asked again with a bounded backoff while they
fail, the outage logged once when it starts and once when it ends, its reason kept meanwhile."""

from __future__ import annotations

import logging
import threading

import pytest

from stream_app.errors import WarehouseUnavailable
from stream_app.retraining.metrics import RetrainerStats
from stream_app.retraining.patience import Patience
from stream_app.settings import Settings

SETTINGS = Settings(retrainer_warehouse_retry_s=0.01, retrainer_warehouse_retry_max_s=0.02)


def test_a_question_is_asked_again_until_it_is_answered(caplog: pytest.LogCaptureFixture) -> None:
    stats = RetrainerStats()
    patience = Patience(SETTINGS, threading.Event(), stats)
    seen: list[str | None] = []

    def question() -> int:
        seen.append(patience.unavailable)
        if len(seen) <= 4:
            raise WarehouseUnavailable(f"endpoint down ({len(seen)})")
        return 42

    with caplog.at_level(logging.INFO, logger="stream_app.retraining.patience"):
        assert patience.ask(question) == 42
    # while it failed, the last failure's reason; answered, none
    assert seen == [None, "endpoint down (1)", "endpoint down (2)", "endpoint down (3)",
                    "endpoint down (4)"]  # fmt: skip
    assert patience.unavailable is None and stats.warehouse_failures == 4
    assert [r.getMessage() for r in caplog.records] == [
        "warehouse unavailable, asking again with a backoff: endpoint down (1)",
        "the warehouse answers again",
    ]


def test_a_stop_ends_the_wait_without_an_answer() -> None:
    stopping = threading.Event()
    patience = Patience(SETTINGS, stopping, RetrainerStats())

    def question() -> int:
        stopping.set()
        raise WarehouseUnavailable("endpoint down")

    assert patience.ask(question) is None
    assert patience.unavailable == "endpoint down"
